from datetime import timedelta
from decimal import Decimal as D

import pytest

from ledger_core.commands import (
    IssueKey,
    OpenAccount,
    PostCharge,
    Recharge,
    RecordUsage,
    Release,
    Reserve,
    Settle,
    UpdateAccount,
)
from ledger_core.errors import (
    AccountExists,
    AccountNotFound,
    CurrencyMismatch,
    IdempotencyKeyReused,
    InsufficientCredits,
    InvalidInput,
    InvariantViolation,
    InvoiceModeChangeBlocked,
    ReservationClosed,
    ReservationExists,
    ReservationExpired,
    ReservationNotFound,
    SettleExceedsHold,
)
from ledger_core.usage import UsageLine
from persistence.appending import AppendExtras
from projections.rows import TransactionFilter
from tests.service.helpers import figures, last_position, open_account


def test_worked_example_one_reproduces_to_the_last_digit(service):
    open_account(service, billing_mode="postpaid", invoice_mode="itemized", credit_limit="5000")
    service.handle(RecordUsage("acme", idempotency_key="u1", amount="1610.61", line=UsageLine(product="voice")))
    service.handle(PostCharge("acme", idempotency_key="c1", kind="addon", description="DID", amount="0.20544"))
    f = figures(service)
    assert (f["expecting_invoice"], f["amount_due"], f["current_balance"]) == ("-1610.610000", "-0.205440", "-1610.815440")


def test_worked_example_two_reproduces_to_the_last_digit(service):
    open_account(service, invoice_mode="none")
    service.handle(Recharge("acme", amount="65.98", reference="top-up"))
    service.handle(UpdateAccount("acme", invoice_mode="itemized"))
    service.handle(PostCharge("acme", idempotency_key="c1", kind="service", description="x", amount="0.000009"))
    f = figures(service)
    assert (f["expecting_invoice"], f["amount_due"], f["current_balance"]) == ("65.980000", "-0.000009", "65.979991")


def test_opening_twice_is_a_conflict_and_unknown_accounts_are_not_found(service):
    open_account(service)
    with pytest.raises(AccountExists):
        open_account(service)
    with pytest.raises(AccountNotFound):
        service.handle(Recharge("nobody", amount="1"))


def test_usage_with_the_same_key_books_once_and_reports_the_first_result(service):
    open_account(service)
    first = service.handle(RecordUsage("acme", idempotency_key="k", unit_price="0.1", line=UsageLine(product="sms",
                                                                                                     quantity="3")))
    before = last_position(service)
    again = service.handle(RecordUsage("acme", idempotency_key="k", unit_price="0.1", line=UsageLine(product="sms",
                                                                                                     quantity="3")))
    assert last_position(service) == before
    assert (again.replayed, again.transaction_no, again.amount) == (True, first.transaction_no, D("0.3"))
    assert figures(service)["expecting_invoice"] == "-0.300000"
    with pytest.raises(IdempotencyKeyReused):
        service.handle(RecordUsage("acme", idempotency_key="k", amount="9", line=UsageLine(product="sms")))


def test_charge_keys_are_separate_from_usage_keys(service):
    open_account(service, invoice_mode="itemized")
    service.handle(RecordUsage("acme", idempotency_key="same", amount="1", line=UsageLine(product="sms")))
    service.handle(PostCharge("acme", idempotency_key="same", kind="subscription", description="Pro", amount="10"))
    replay = service.handle(PostCharge("acme", idempotency_key="same", kind="subscription", description="Pro",
                                       amount="10"))
    assert replay.replayed
    assert (figures(service)["expecting_invoice"], figures(service)["amount_due"]) == ("-1.000000", "-10.000000")


def test_reserve_settle_release_lifecycle(service):
    open_account(service)
    service.handle(Recharge("acme", amount="100"))
    service.handle(Reserve("acme", reservation_id="r1", amount="40"))
    assert figures(service)["usable_credits"] == "60.000000"
    with pytest.raises(InsufficientCredits):
        service.handle(Reserve("acme", reservation_id="r2", amount="60.000001"))
    with pytest.raises(ReservationExists):
        service.handle(Reserve("acme", reservation_id="r1", amount="1"))
    with pytest.raises(SettleExceedsHold):
        service.handle(Settle("acme", "r1", amount="40.000001", line=UsageLine(product="call")))
    booking = service.handle(Settle("acme", "r1", amount="12.5", line=UsageLine(product="call", quantity="5",
                                                                                unit="min")))
    assert booking.transaction_no is not None
    assert figures(service) == {"expecting_invoice": "-12.500000", "amount_due": "100.000000",
                                "current_balance": "87.500000", "reserved": "0.000000", "usable_credits": "87.500000"}
    with pytest.raises(ReservationClosed) as closed:
        service.handle(Settle("acme", "r1", amount="1", line=UsageLine(product="call")))
    assert closed.value.details["status"] == "settled"
    with pytest.raises(ReservationNotFound):
        service.handle(Release("acme", "nope", reason="failed"))
    service.handle(Reserve("acme", reservation_id="r3", amount="10"))
    service.handle(Release("acme", "r3", reason="failed"))
    with pytest.raises(ReservationClosed):
        service.handle(Release("acme", "r3", reason="failed"))
    assert service.view.holds("acme") == []
    assert figures(service)["usable_credits"] == "87.500000"


def test_expiry_releases_only_holds_past_their_time(service, clock):
    open_account(service, billing_mode="postpaid", credit_limit="100")
    service.handle(Reserve("acme", reservation_id="soon", amount="10", expires_at=clock.now + timedelta(minutes=5)))
    service.handle(Reserve("acme", reservation_id="later", amount="20", expires_at=clock.now + timedelta(hours=1)))
    service.handle(Reserve("acme", reservation_id="never", amount="30"))
    clock.advance(600)
    with pytest.raises(ReservationExpired):
        service.handle(Settle("acme", "soon", amount="1", line=UsageLine(product="call")))
    assert service.expire_due_reservations() == {"acme": ["soon"]}
    assert [h.reservation_id for h in service.view.holds("acme")] == ["later", "never"]
    assert figures(service)["reserved"] == "50.000000"
    assert service.expire_due_reservations() == {}


def test_block_policy_refuses_usage_beyond_credit_but_default_records_overdraft(service):
    open_account(service, "blocky", usage_policy="block")
    open_account(service, "open")
    with pytest.raises(InsufficientCredits):
        service.handle(RecordUsage("blocky", idempotency_key="u", amount="0.01", line=UsageLine(product="sms")))
    service.handle(RecordUsage("open", idempotency_key="u", amount="0.01", line=UsageLine(product="sms")))
    row = service.account_row("open")
    assert (row.figures.usable_credits, row.figures.overdraft) == (D("-0.01"), D("0.01"))


def test_settings_change_all_or_nothing(service):
    open_account(service, invoice_mode="itemized")
    service.handle(PostCharge("acme", idempotency_key="c", kind="hardware", description="phone", amount="5"))
    before = last_position(service)
    with pytest.raises(InvoiceModeChangeBlocked):
        service.handle(UpdateAccount("acme", credit_limit="50", invoice_mode="none"))
    assert last_position(service) == before
    assert service.account_row("acme").figures.credit_limit == 0
    service.handle(UpdateAccount("acme", credit_limit="50", payer={"name": "Ünal Çelik"}, tax_rate="0.09"))
    row = service.account_row("acme")
    assert (row.figures.credit_limit, row.payer["name"], row.tax_rate) == (D(50), "Ünal Çelik", D("0.09"))


def test_rejections_write_nothing(service):
    open_account(service)
    before = last_position(service)
    for command in (
        lambda l: l.handle(Recharge("acme", amount="-1")),
        lambda l: l.handle(Recharge("acme", amount="1", currency="USD")),
        lambda l: l.handle(RecordUsage("acme", idempotency_key="u", amount="1", unit_price="1",
                                       line=UsageLine(product="sms"))),
        lambda l: l.handle(Reserve("acme", reservation_id="r", amount="1")),
        lambda l: l.handle(PostCharge("acme", idempotency_key="c", kind="gift", description="", amount="1")),
    ):
        with pytest.raises((InvalidInput, CurrencyMismatch, InsufficientCredits)):
            service.run(command)
    assert last_position(service) == before


def test_balance_details_rows_carry_balance_after_and_filters(service):
    open_account(service)
    service.handle(Recharge("acme", amount="10", reference="INV-77"))
    service.handle(RecordUsage("acme", idempotency_key="u1", amount="1.5", line=UsageLine(product="sms",
                                                                                          application_id="app-1")))
    service.handle(RecordUsage("acme", idempotency_key="u2", amount="2", line=UsageLine(product="voice")))
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


def test_an_account_or_a_key_is_written_on_its_own_never_in_a_batch(service):
    for command in (OpenAccount("solo", currency="SGD", invoice_mode="none"), IssueKey("finance")):
        with pytest.raises(InvariantViolation):
            with service.commands.batch(AppendExtras()) as batch:
                batch.handle(command)
    with pytest.raises(AccountNotFound):
        service.commands.account("solo")
    assert service.commands.api_keys() == []
