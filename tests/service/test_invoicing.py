"""A scripted month (and the next) per invoice mode: five figures and invoice totals at
every step, against numbers worked out by hand in the comments."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from ledger_core.commands import (
    ApproveInvoice,
    CloseCycles,
    InvoiceTopup,
    InvoiceUsage,
    PaymentReceived,
    PostCharge,
    Recharge,
    RecordPayment,
    RecordUsage,
    RefundOverpayment,
    Reserve,
    Settle,
    UpdateAccount,
    VoidInvoice,
)
from ledger_core.errors import (
    InvoiceModeChangeBlocked,
    InvoiceNotDraft,
    InvoicingNotAvailable,
    NothingToInvoice,
    RefundExceedsCredit,
)
from ledger_core.usage import UsageLine
from projections.rows import InvoiceFilter
from tests.service.helpers import open_account


def at(clock, text: str) -> datetime:
    clock.now = datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
    return clock.now


def five(service, account_id="acme"):
    f = service.account_row(account_id).figures
    return tuple(f"{x:f}" for x in (f.expecting_invoice, f.amount_due, f.current_balance, f.reserved, f.usable_credits))


def invoice(service, invoice_id):
    row = service.view.invoice(invoice_id)
    return (row.status, row.number, f"{row.subtotal:f}", f"{row.tax:f}", f"{row.total:f}", f"{row.paid:f}",
            f"{row.outstanding:f}", row.payment_status)


def usage(service, key, amount, occurred, product="sms", account_id="acme"):
    return service.handle(RecordUsage(account_id, idempotency_key=key, amount=amount, line=UsageLine(product=product),
                                      occurred_at=datetime.fromisoformat(occurred).replace(tzinfo=timezone.utc)))


def books_check(service, account_id="acme"):
    service.commands.account(account_id).check_books()


def test_consolidated_prepaid_month_then_late_usage_and_refund(service, clock):
    at(clock, "2026-11-26T09:00:00")
    open_account(service, billing_mode="prepaid", invoice_mode="consolidated", tax_rate="0.09")
    service.handle(Recharge("acme", amount="100"))
    assert five(service) == ("0.000000", "100.000000", "100.000000", "0.000000", "100.000000")
    usage(service, "u1", "30.50", "2026-11-26T09:00:00")
    service.handle(PostCharge("acme", idempotency_key="c1", kind="subscription", description="Plan", amount="20"))
    service.handle(Reserve("acme", reservation_id="r1", amount="10"))
    assert five(service) == ("-50.500000", "100.000000", "49.500000", "10.000000", "39.500000")
    service.handle(Settle("acme", "r1", amount="8", line=UsageLine(product="voice")))
    assert five(service) == ("-58.500000", "100.000000", "41.500000", "0.000000", "41.500000")

    # Dec 1: the November invoice, issued at once (prepaid), paid from the funds.
    # 58.50 x 9% = 5.265 -> 5.27 (HALF_UP, once per invoice); total 63.77.
    at(clock, "2026-12-01T00:00:01")
    [first] = service.handle(CloseCycles("acme"))
    assert invoice(service, first) == ("approved", "INV-2026-000001", "58.500000", "5.270000", "63.770000",
                                       "63.770000", "0.000000", "paid")
    assert five(service) == ("0.000000", "36.230000", "36.230000", "0.000000", "36.230000")
    assert service.handle(CloseCycles("acme")) == []  # closing again closes nothing

    # Late usage of Nov 30 arrives Dec 2; December usage; a payment in advance.
    at(clock, "2026-12-02T10:00:00")
    usage(service, "u2", "5", "2026-11-30T23:00:00")
    usage(service, "u3", "7", "2026-12-15T08:00:00")
    service.handle(RecordPayment("acme", payment_id="p1", amount="10", method="bank"))
    assert five(service) == ("-12.000000", "46.230000", "34.230000", "0.000000", "34.230000")

    # Jan 1: 5 (late, shows Nov 30) + 7 = 12; tax 1.08; total 13.08 from credit: due 33.15.
    at(clock, "2027-01-01T00:00:00")
    [second] = service.handle(CloseCycles("acme"))
    assert invoice(service, second) == ("approved", "INV-2027-000001", "12.000000", "1.080000", "13.080000",
                                        "13.080000", "0.000000", "paid")
    lines = service.view.invoice_lines(second)
    assert [(x.date_from, x.late, f"{x.amount:f}") for x in lines] == [("2026-11-30", True, "5.000000"),
                                                                       ("2026-12-15", False, "7.000000")]
    assert five(service) == ("0.000000", "33.150000", "33.150000", "0.000000", "33.150000")

    with pytest.raises(RefundExceedsCredit):
        service.handle(RefundOverpayment("acme", amount="40", reference="RF-1"))
    service.handle(RefundOverpayment("acme", amount="3.15", reference="RF-1"))
    assert five(service) == ("0.000000", "30.000000", "30.000000", "0.000000", "30.000000")
    books_check(service)


def test_consolidated_postpaid_draft_approval_partial_and_overpayment(service, clock):
    at(clock, "2026-11-26T09:00:00")
    open_account(service, billing_mode="postpaid", invoice_mode="consolidated", credit_limit="500", tax_rate="0.09")
    usage(service, "u1", "100", "2026-11-27T00:00:00")
    assert five(service) == ("-100.000000", "0.000000", "-100.000000", "0.000000", "400.000000")

    at(clock, "2026-12-01T06:00:00")
    [draft] = service.handle(CloseCycles("acme"))
    # A draft moves no money: unbilled and usable credits stay.
    assert invoice(service, draft) == ("draft", None, "100.000000", "9.000000", "109.000000", "0.000000",
                                       "0.000000", "unpaid")
    assert five(service) == ("-100.000000", "0.000000", "-100.000000", "0.000000", "400.000000")

    number = service.handle(ApproveInvoice(draft))
    assert number == "INV-2026-000001"
    # Approval bills it and renews the credit limit (usable back to 500).
    assert five(service) == ("0.000000", "-109.000000", "-109.000000", "0.000000", "500.000000")
    with pytest.raises(InvoiceNotDraft):
        service.handle(ApproveInvoice(draft))
    row = service.view.invoice(draft)
    assert (row.issued_at, row.due_on) == (clock.now, "2026-12-15")  # 14 days' terms

    service.handle(RecordPayment("acme", payment_id="p1", amount="50"))
    assert invoice(service, draft)[5:] == ("50.000000", "59.000000", "partially_paid")
    assert five(service)[:3] == ("0.000000", "-59.000000", "-59.000000")
    service.handle(RecordPayment("acme", payment_id="p2", amount="80"))  # 21 over
    assert invoice(service, draft)[5:] == ("109.000000", "0.000000", "paid")
    assert five(service)[:3] == ("0.000000", "21.000000", "21.000000")
    # The same payment id again changes nothing.
    again = service.handle(RecordPayment("acme", payment_id="p2", amount="80"))
    assert again.replayed and five(service)[:3] == ("0.000000", "21.000000", "21.000000")

    # Next month: 30 of usage; 32.70 billed; the 21 of credit applies at once.
    usage(service, "u2", "30", "2026-12-10T00:00:00")
    at(clock, "2027-01-01T00:00:00")
    [december] = service.handle(CloseCycles("acme"))
    service.handle(ApproveInvoice(december))
    assert invoice(service, december) == ("approved", "INV-2027-000001", "30.000000", "2.700000", "32.700000",
                                          "21.000000", "11.700000", "partially_paid")
    assert five(service) == ("0.000000", "-11.700000", "-11.700000", "0.000000", "500.000000")
    payments = service.view.invoice_payments(draft)
    assert [p.payment_id for p in payments] == ["p1", "p2"]
    books_check(service)


def test_void_puts_usage_back_for_the_next_invoice(service, clock):
    at(clock, "2026-11-26T09:00:00")
    open_account(service, billing_mode="postpaid", invoice_mode="consolidated", credit_limit="500")
    usage(service, "u1", "40", "2026-11-27T00:00:00")
    at(clock, "2026-12-01T00:00:00")
    [draft] = service.handle(CloseCycles("acme"))
    usage(service, "u2", "2", "2026-11-27T12:00:00")  # late, same day and product as the drafted entry
    service.handle(VoidInvoice(draft))
    assert service.view.invoice(draft).status == "void"
    at(clock, "2027-01-01T00:00:00")
    [again] = service.handle(CloseCycles("acme"))
    assert invoice(service, again)[2] == "42.000000"  # nothing lost, nothing twice
    assert five(service)[0] == "-42.000000"
    books_check(service)


def test_itemized_charges_get_their_own_invoice_and_usage_a_monthly_one(service, clock):
    at(clock, "2026-11-26T09:00:00")
    open_account(service, billing_mode="postpaid", invoice_mode="itemized", credit_limit="1000", tax_rate="0.09",
                 drafts_need_approval=False)
    usage(service, "u1", "40", "2026-11-26T10:00:00")
    service.handle(PostCharge("acme", idempotency_key="c1", kind="hardware", description="Phone", amount="100"))
    # The charge is invoiced when posted: 100 + 9 tax billed; usage stays unbilled.
    assert five(service) == ("-40.000000", "-109.000000", "-149.000000", "0.000000", "960.000000")
    [charge] = service.view.invoices(InvoiceFilter(account_id="acme"), 10)[0]
    assert (charge.kind, charge.number, f"{charge.total:f}") == ("charge", "INV-2026-000001", "109.000000")

    at(clock, "2026-12-01T00:00:00")
    [monthly] = service.handle(CloseCycles("acme"))  # no approval needed: issued at once
    assert invoice(service, monthly)[:5] == ("approved", "INV-2026-000002", "40.000000", "3.600000", "43.600000")
    assert five(service) == ("0.000000", "-152.600000", "-152.600000", "0.000000", "1000.000000")

    service.handle(RecordPayment("acme", payment_id="p1", amount="109"))  # oldest first: the charge's
    assert invoice(service, charge.invoice_id)[7] == "paid" and invoice(service, monthly)[7] == "unpaid"
    service.handle(RecordPayment("acme", payment_id="p2", amount="10", invoice_id=monthly))
    assert invoice(service, monthly)[5:] == ("10.000000", "33.600000", "partially_paid")
    assert five(service)[:3] == ("0.000000", "-33.600000", "-33.600000")
    service.handle(RecordPayment("acme", payment_id="p3", amount="40"))  # 33.60 owed; 6.40 stays credit
    assert five(service)[:3] == ("0.000000", "6.400000", "6.400000")
    assert [p.payment_id for p in service.view.invoice_payments(monthly)] == ["p2", "p3"]
    assert [p.payment_id for p in service.view.invoice_payments(charge.invoice_id)] == ["p1"]
    books_check(service)


def test_mode_none_issues_nothing_and_a_switch_carries_the_balance_over(service, clock):
    at(clock, "2026-11-26T09:00:00")
    open_account(service, billing_mode="prepaid", invoice_mode="none", tax_rate="0.09")
    service.handle(Recharge("acme", amount="50"))
    usage(service, "u1", "20", "2026-11-26T10:00:00")
    at(clock, "2026-12-01T00:00:00")
    assert service.handle(CloseCycles("acme")) == []
    assert five(service) == ("30.000000", "0.000000", "30.000000", "0.000000", "30.000000")
    with pytest.raises(InvoicingNotAvailable):
        service.handle(RecordPayment("acme", payment_id="p1", amount="5"))

    service.handle(UpdateAccount("acme", invoice_mode="consolidated"))
    usage(service, "u2", "5", "2026-12-03T00:00:00")
    at(clock, "2027-01-01T00:00:00")
    [note] = service.handle(CloseCycles("acme"))
    # The carried-over 30 (funds, untaxed) and 5 of usage (+0.45 tax): a credit note of 24.55.
    assert invoice(service, note)[2:5] == ("-25.000000", "0.450000", "-24.550000")
    assert five(service) == ("0.000000", "24.550000", "24.550000", "0.000000", "24.550000")
    with pytest.raises(InvoiceModeChangeBlocked):
        service.handle(UpdateAccount("acme", invoice_mode="none"))
    books_check(service)


def test_manual_invoices_topup_claim_and_usage_range(service, clock):
    at(clock, "2026-11-26T09:00:00")
    open_account(service, "pre", billing_mode="prepaid", invoice_mode="consolidated", tax_rate="0.09")
    topup = service.handle(InvoiceTopup("pre", amount="100", description="Credits")).invoice_id
    # Issued, unpaid, and no money moved yet.
    assert invoice(service, topup) == ("approved", "INV-2026-000001", "100.000000", "9.000000", "109.000000",
                                       "0.000000", "109.000000", "unpaid")
    assert five(service, "pre")[:3] == ("0.000000", "0.000000", "0.000000")
    service.handle(RecordPayment("pre", payment_id="p1", amount="109", invoice_id=topup))
    # Paid in full: the credits (before tax) arrive as a recharge.
    assert invoice(service, topup)[5:] == ("109.000000", "0.000000", "paid")
    assert five(service, "pre") == ("0.000000", "100.000000", "100.000000", "0.000000", "100.000000")
    # Create and claim: issued and paid in one write, so the credits arrive with the invoice.
    paid = PaymentReceived("p2", method="card", reference="C2")
    claimed = service.handle(InvoiceTopup("pre", amount="50", description="More", paid=paid))
    assert invoice(service, claimed.invoice_id)[1:] == ("INV-2026-000002", "50.000000", "4.500000", "54.500000",
                                                        "54.500000", "0.000000", "paid")
    assert five(service, "pre")[1] == "150.000000"
    assert service.handle(InvoiceTopup("pre", amount="50", description="More", paid=paid)).replayed
    assert five(service, "pre")[1] == "150.000000"

    open_account(service, "post", billing_mode="postpaid", invoice_mode="consolidated", credit_limit="100")
    usage(service, "a", "3", "2026-11-20T00:00:00", account_id="post")
    usage(service, "b", "4", "2026-11-25T00:00:00", account_id="post")
    with pytest.raises(NothingToInvoice):
        service.handle(InvoiceUsage("post", date_from=date(2026, 10, 1), date_to=date(2026, 10, 31)))
    manual = service.handle(InvoiceUsage("post", date_from=date(2026, 11, 18), date_to=date(2026, 11, 21))).invoice_id
    assert invoice(service, manual)[:5] == ("approved", "INV-2026-000003", "3.000000", "0.000000", "3.000000")
    assert five(service, "post")[:2] == ("-4.000000", "-3.000000")
    books_check(service, "pre")
    books_check(service, "post")


def test_cycles_follow_the_anchor_day_in_the_account_time_zone(service, clock):
    at(clock, "2026-11-20T09:00:00")
    open_account(service, billing_mode="postpaid", invoice_mode="consolidated", credit_limit="100",
                 cycle_anchor_day=31, time_zone="Asia/Singapore", drafts_need_approval=False)
    # 2026-11-30 16:30 UTC is Dec 1, 00:30 in Singapore: after the boundary (Nov 30 local midnight).
    usage(service, "u1", "1", "2026-11-29T15:00:00")  # Nov 29, 23:00 local: November's cycle
    usage(service, "u2", "2", "2026-11-29T16:30:00")  # Nov 30, 00:30 local: the next cycle
    at(clock, "2026-11-29T16:00:01")
    [nov] = service.handle(CloseCycles("acme"))
    assert invoice(service, nov)[2] == "1.000000"
    row = service.view.invoice(nov)
    assert row.period_end == datetime(2026, 11, 29, 16, 0, tzinfo=timezone.utc)


def test_recurring_settings_stop_and_restart_the_cycle(service, clock):
    at(clock, "2026-11-26T09:00:00")
    open_account(service, billing_mode="postpaid", invoice_mode="consolidated", credit_limit="100")
    service.handle(UpdateAccount("acme", cycle_running=False, payment_terms_days=30))
    usage(service, "u1", "5", "2026-11-27T00:00:00")
    at(clock, "2027-02-10T00:00:00")
    assert service.handle(CloseCycles("acme")) == []  # stopped: nothing issued
    service.handle(UpdateAccount("acme", cycle_running=True))
    at(clock, "2027-03-01T00:00:00")
    [draft] = service.handle(CloseCycles("acme"))  # the restarted cycle: Feb 1 - Mar 1
    row = service.view.invoice(draft)
    assert (row.period_start, f"{row.total:f}") == (datetime(2027, 2, 1, tzinfo=timezone.utc), "5.000000")
    service.handle(ApproveInvoice(draft))
    assert service.view.invoice(draft).due_on == "2027-03-31"
    assert service.account_row("acme").billing_settings["payment_terms_days"] == 30


def test_close_cycles_command_closes_every_due_account_once(service, clock, run_cli):
    at(clock, "2026-11-26T09:00:00")
    for account_id in ("a1", "a2"):
        open_account(service, account_id, billing_mode="prepaid", invoice_mode="consolidated")
        usage(service, "u", "2", "2026-11-26T10:00:00", account_id=account_id)
    open_account(service, "a3", billing_mode="prepaid", invoice_mode="none")
    first = run_cli("close-cycles", "--as-of", "2026-12-01T00:00:00+0000")
    assert first.exit_code == 0, first.output
    assert '"count": 2' in first.output and '"a1": ["a1:I000001"]' in first.output
    again = run_cli("close-cycles", "--as-of", "2026-12-01T00:00:00+0000")
    assert '"count": 0' in again.output
    service.projector.catch_up()
    assert [r.number for r in service.view.invoices(InvoiceFilter(), 10)[0]] == ["INV-2026-000002", "INV-2026-000001"]
