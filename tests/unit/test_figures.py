from decimal import Decimal as D

import pytest

from ledger_core.errors import InvariantViolation
from ledger_core.figures import BillingMode, Figures, InvoiceMode


def figures(billing="prepaid", invoice="consolidated", limit="0"):
    return Figures(BillingMode(billing), InvoiceMode(invoice), D(limit))


@pytest.mark.parametrize(
    ("mode", "expecting", "due"),
    [("itemized", "0", "100"), ("consolidated", "0", "100"), ("none", "100", "0")],
)
def test_recharge_lands_in_amount_due_unless_mode_none(mode, expecting, due):
    f = figures(invoice=mode).after_money_in(D(100))
    assert (f.expecting_invoice, f.amount_due) == (D(expecting), D(due))


def test_usage_and_charges_land_unbilled_until_invoiced():
    for mode in ("itemized", "consolidated", "none"):
        f = figures(invoice=mode).after_usage(D(5)).after_charge(D(7))
        assert (f.expecting_invoice, f.amount_due) == (D(-12), D(0))


def test_an_invoice_moves_its_lines_to_billed_and_bills_the_tax():
    f = figures(invoice="itemized").after_usage(D(5)).after_charge(D(7)).after_invoice(D(7), D("7.63"))
    assert (f.expecting_invoice, f.amount_due, f.current_balance) == (D(-5), D("-7.63"), D("-12.63"))
    paid = f.after_payment(D(10)).after_refund(D("2.37"))
    assert paid.amount_due == D(0)


def test_worked_example_figures():
    f = Figures(BillingMode.POSTPAID, InvoiceMode.ITEMIZED, D(0), expecting_invoice=D("-1610.61"), amount_due=D("-0.20544"))
    assert f.current_balance == D("-1610.81544")


def test_usable_credits_postpaid_ignores_amount_due():
    f = figures("postpaid", "itemized", "1000").after_usage(D(300)).after_charge(D(50)).after_invoice(D(50), D(50)).after_reserve(D(100))
    assert f.usable_credits == D(1000) - D(300) - D(100)
    assert f.overdraft == 0


def test_usable_credits_prepaid_is_balance_plus_overdraft_allowance_minus_holds():
    f = figures("prepaid", "consolidated", "20").after_money_in(D(100)).after_usage(D(30)).after_reserve(D(10))
    assert f.usable_credits == D(100) - D(30) + D(20) - D(10)


def test_overdraft_is_spending_beyond_own_money_not_holds():
    prepaid = figures("prepaid", "consolidated", "50").after_money_in(D(10)).after_usage(D(25)).after_reserve(D(5))
    assert prepaid.overdraft == D(15)
    postpaid = figures("postpaid", "itemized", "100").after_usage(D(130))
    assert postpaid.overdraft == D(30)


def test_settle_releases_the_hold_and_books_the_final_amount():
    f = figures(limit="100").after_reserve(D(40)).after_settle(D(40), D(25))
    assert (f.reserved, f.expecting_invoice, f.usable_credits) == (D(0), D(-25), D(75))


def test_broken_invariants_raise_not_assert():
    with pytest.raises(InvariantViolation):
        figures().after_release(D(1)).checked()
    with pytest.raises(InvariantViolation):
        Figures(BillingMode.PREPAID, InvoiceMode.NONE, D(0), amount_due=D(1)).checked()
