from datetime import timedelta
from decimal import Decimal as D

import pytest

from ledger_core.errors import (
    AccountExists,
    AccountNotFound,
    CurrencyMismatch,
    IdempotencyKeyReused,
    InsufficientCredits,
    InvalidInput,
    InvoiceModeChangeBlocked,
    ReservationClosed,
    ReservationExists,
    ReservationExpired,
    ReservationNotFound,
    SettleExceedsHold,
)
from projections.rows import TransactionFilter
from tests.service.helpers import figures, last_position, open_account


def test_worked_example_one_reproduces_to_the_last_digit(service):
    open_account(service, billing_mode="postpaid", invoice_mode="itemized", credit_limit="5000")
    service.run(lambda l: l.record_usage("acme", idempotency_key="u1", product="voice", amount="1610.61"))
    service.run(lambda l: l.post_charge("acme", idempotency_key="c1", kind="addon", description="DID", amount="0.20544"))
    f = figures(service)
    assert (f["expecting_invoice"], f["amount_due"], f["current_balance"]) == ("-1610.610000", "-0.205440", "-1610.815440")


def test_worked_example_two_reproduces_to_the_last_digit(service):
    open_account(service, invoice_mode="none")
    service.run(lambda l: l.recharge("acme", amount="65.98", reference="top-up"))
    service.run(lambda l: l.update_account("acme", invoice_mode="itemized"))
    service.run(lambda l: l.post_charge("acme", idempotency_key="c1", kind="service", description="x", amount="0.000009"))
    f = figures(service)
    assert (f["expecting_invoice"], f["amount_due"], f["current_balance"]) == ("65.980000", "-0.000009", "65.979991")


def test_opening_twice_is_a_conflict_and_unknown_accounts_are_not_found(service):
    open_account(service)
    with pytest.raises(AccountExists):
        open_account(service)
    with pytest.raises(AccountNotFound):
        service.run(lambda l: l.recharge("nobody", amount="1"))


def test_usage_with_the_same_key_books_once_and_reports_the_first_result(service):
    open_account(service)
    first = service.run(lambda l: l.record_usage("acme", idempotency_key="k", product="sms", quantity="3", unit_price="0.1"))
    before = last_position(service)
    again = service.run(lambda l: l.record_usage("acme", idempotency_key="k", product="sms", quantity="3", unit_price="0.1"))
    assert last_position(service) == before
    assert (again.replayed, again.transaction_no, again.amount) == (True, first.transaction_no, D("0.3"))
    assert figures(service)["expecting_invoice"] == "-0.300000"
    with pytest.raises(IdempotencyKeyReused):
        service.run(lambda l: l.record_usage("acme", idempotency_key="k", product="sms", amount="9"))


def test_charge_keys_are_separate_from_usage_keys(service):
    open_account(service, invoice_mode="itemized")
    service.run(lambda l: l.record_usage("acme", idempotency_key="same", product="sms", amount="1"))
    service.run(lambda l: l.post_charge("acme", idempotency_key="same", kind="subscription", description="Pro", amount="10"))
    replay = service.run(lambda l: l.post_charge("acme", idempotency_key="same", kind="subscription", description="Pro", amount="10"))
    assert replay.replayed
    assert (figures(service)["expecting_invoice"], figures(service)["amount_due"]) == ("-1.000000", "-10.000000")


def test_reserve_settle_release_lifecycle(service):
    open_account(service)
    service.run(lambda l: l.recharge("acme", amount="100"))
    service.run(lambda l: l.reserve("acme", reservation_id="r1", amount="40"))
    assert figures(service)["usable_credits"] == "60.000000"
    with pytest.raises(InsufficientCredits):
        service.run(lambda l: l.reserve("acme", reservation_id="r2", amount="60.000001"))
    with pytest.raises(ReservationExists):
        service.run(lambda l: l.reserve("acme", reservation_id="r1", amount="1"))
    with pytest.raises(SettleExceedsHold):
        service.run(lambda l: l.settle("acme", "r1", amount="40.000001", product="call"))
    booking = service.run(lambda l: l.settle("acme", "r1", amount="12.5", product="call", quantity="5", unit="min"))
    assert booking.transaction_no is not None
    assert figures(service) == {"expecting_invoice": "-12.500000", "amount_due": "100.000000",
                                "current_balance": "87.500000", "reserved": "0.000000", "usable_credits": "87.500000"}
    with pytest.raises(ReservationClosed) as closed:
        service.run(lambda l: l.settle("acme", "r1", amount="1", product="call"))
    assert closed.value.details["status"] == "settled"
    with pytest.raises(ReservationNotFound):
        service.run(lambda l: l.release("acme", "nope", reason="failed"))
    service.run(lambda l: l.reserve("acme", reservation_id="r3", amount="10"))
    service.run(lambda l: l.release("acme", "r3", reason="failed"))
    with pytest.raises(ReservationClosed):
        service.run(lambda l: l.release("acme", "r3", reason="failed"))
    assert service.view.holds("acme") == []
    assert figures(service)["usable_credits"] == "87.500000"


def test_expiry_releases_only_holds_past_their_time(service, clock):
    open_account(service, billing_mode="postpaid", credit_limit="100")
    service.run(lambda l: l.reserve("acme", reservation_id="soon", amount="10", expires_at=clock.now + timedelta(minutes=5)))
    service.run(lambda l: l.reserve("acme", reservation_id="later", amount="20", expires_at=clock.now + timedelta(hours=1)))
    service.run(lambda l: l.reserve("acme", reservation_id="never", amount="30"))
    clock.advance(600)
    with pytest.raises(ReservationExpired):
        service.run(lambda l: l.settle("acme", "soon", amount="1", product="call"))
    assert service.expire_due_reservations() == {"acme": ["soon"]}
    assert [h.reservation_id for h in service.view.holds("acme")] == ["later", "never"]
    assert figures(service)["reserved"] == "50.000000"
    assert service.expire_due_reservations() == {}


def test_block_policy_refuses_usage_beyond_credit_but_default_records_overdraft(service):
    open_account(service, "blocky", usage_policy="block")
    open_account(service, "open")
    with pytest.raises(InsufficientCredits):
        service.run(lambda l: l.record_usage("blocky", idempotency_key="u", product="sms", amount="0.01"))
    service.run(lambda l: l.record_usage("open", idempotency_key="u", product="sms", amount="0.01"))
    row = service.account_row("open")
    assert (row.figures.usable_credits, row.figures.overdraft) == (D("-0.01"), D("0.01"))


def test_settings_change_all_or_nothing(service):
    open_account(service, invoice_mode="itemized")
    service.run(lambda l: l.post_charge("acme", idempotency_key="c", kind="hardware", description="phone", amount="5"))
    before = last_position(service)
    with pytest.raises(InvoiceModeChangeBlocked):
        service.run(lambda l: l.update_account("acme", credit_limit="50", invoice_mode="none"))
    assert last_position(service) == before
    assert service.account_row("acme").figures.credit_limit == 0
    service.run(lambda l: l.update_account("acme", credit_limit="50", payer={"name": "Ünal Çelik"}, tax_rate="0.09"))
    row = service.account_row("acme")
    assert (row.figures.credit_limit, row.payer["name"], row.tax_rate) == (D(50), "Ünal Çelik", D("0.09"))


def test_rejections_write_nothing(service):
    open_account(service)
    before = last_position(service)
    for command in (
        lambda l: l.recharge("acme", amount="-1"),
        lambda l: l.recharge("acme", amount="1", currency="USD"),
        lambda l: l.record_usage("acme", idempotency_key="u", product="sms", amount="1", unit_price="1"),
        lambda l: l.reserve("acme", reservation_id="r", amount="1"),
        lambda l: l.post_charge("acme", idempotency_key="c", kind="gift", description="", amount="1"),
    ):
        with pytest.raises((InvalidInput, CurrencyMismatch, InsufficientCredits)):
            service.run(command)
    assert last_position(service) == before


def test_balance_details_rows_carry_balance_after_and_filters(service):
    open_account(service)
    service.run(lambda l: l.recharge("acme", amount="10", reference="INV-77"))
    service.run(lambda l: l.record_usage("acme", idempotency_key="u1", product="sms", amount="1.5", application_id="app-1"))
    service.run(lambda l: l.record_usage("acme", idempotency_key="u2", product="voice", amount="2"))
    rows = service.view.transactions(TransactionFilter("acme"), limit=10).rows
    assert [(r.type.value, r.item, r.amount, r.balance_after) for r in rows] == [
        ("Expense", "voice", D(-2), D("6.5")), ("Expense", "sms", D("-1.5"), D("8.5")), ("Recharge", "Recharge", D(10), D(10)),
    ]
    assert [r.item for r in service.view.transactions(TransactionFilter("acme", type="Expense", product="sms"), 10).rows] == ["sms"]
    assert [r.reference for r in service.view.transactions(TransactionFilter("acme", text="inv-7"), 10).rows] == ["INV-77"]
    assert service.view.transactions(TransactionFilter("acme", text="%"), 10).rows == []
    page = service.view.transactions(TransactionFilter("acme"), limit=2)
    rest = service.view.transactions(TransactionFilter("acme", before_position=page.next_before_position), limit=2)
    assert [r.item for r in page.rows + rest.rows] == ["voice", "sms", "Recharge"] and rest.next_before_position is None
