"""A view keeps the account rows and bills its last batch wrote (projections/kept.py). Another
writer's batches in between (another server process, another consumer) leave the rows of
the accounts they did not touch current, so those are not read again; the rows of the
accounts they did touch must never be used again, or their events would be lost."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from ledger_core.account import account_uuid
from ledger_core.commands import PlaceOrder, RecordUsage
from ledger_core.usage import UsageLine
from projections.bills import BillFilter
from service.ledger_service import LedgerService
from tests.service.helpers import open_account, two_services


@pytest.fixture
def two(database, clock) -> Iterator[tuple[LedgerService, LedgerService]]:
    with two_services(database, clock) as both:
        yield both


def usage(account_id: str, key: str, amount: str) -> RecordUsage:
    return RecordUsage(account_id, idempotency_key=key, amount=amount, line=UsageLine(product="sms"))


def reads_of(service: LedgerService, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The account rows (aggregate ids) and bills (numbers) the service's view reads from here on."""
    view, asked = service.view, []
    accounts, bills = view._accounts_by_aggregate, view._bills_by_number
    monkeypatch.setattr(view, "_accounts_by_aggregate", lambda keys: asked.extend(map(str, keys)) or accounts(keys))
    monkeypatch.setattr(view, "_bills_by_number", lambda numbers: asked.extend(numbers) or bills(numbers))
    return asked


def billed(service: LedgerService, account_id: str) -> Decimal:
    rows, _ = service.view.bills(BillFilter(account_id=account_id), 10)
    return sum((row.amount for row in rows), Decimal(0))


def test_rows_another_writer_did_not_touch_are_not_read_again(two, monkeypatch):
    here, there = two
    for account_id in ("acme", "other"):
        open_account(here, account_id, billing_mode="postpaid", credit_limit="100")
    here.handle(usage("acme", "u1", "1"))
    there.handle(usage("other", "u2", "2"))  # moves the position past what `here` kept
    asked = reads_of(here, monkeypatch)
    here.handle(usage("acme", "u3", "4"))
    assert asked == []  # acme's row and its bill came from the cache
    assert here.account_row("acme").figures.expecting_invoice == Decimal(-5)
    assert billed(here, "acme") == Decimal(5) and billed(here, "other") == Decimal(2)


def test_a_row_another_writer_changed_is_read_again(two, monkeypatch):
    here, there = two
    open_account(here, "acme", billing_mode="postpaid", credit_limit="100")
    here.handle(usage("acme", "u1", "1"))
    there.handle(usage("acme", "u2", "2"))  # the same account: `here`'s copy is out of date
    asked = reads_of(here, monkeypatch)
    here.handle(usage("acme", "u3", "4"))
    assert str(account_uuid("acme")) in asked
    assert here.account_row("acme").figures.expecting_invoice == Decimal(-7)  # none of the three lost
    assert billed(here, "acme") == Decimal(7)


def test_an_order_s_event_in_between_drops_every_kept_row(two, monkeypatch):
    here, there = two
    for account_id in ("acme", "other"):
        open_account(here, account_id, billing_mode="postpaid", credit_limit="100")
    here.handle(usage("acme", "u1", "1"))
    there.handle(PlaceOrder("other", kind="package", product="Pack", quantity="1", unit_price="3"))
    asked = reads_of(here, monkeypatch)
    here.handle(usage("acme", "u2", "4"))
    assert str(account_uuid("acme")) in asked  # an order's events may name any account
    assert here.account_row("acme").figures.expecting_invoice == Decimal(-5)


def test_the_cache_holds_at_most_the_warm_accounts_setting(service):
    service.view.kept.max_rows = 2
    for n in range(4):
        open_account(service, f"a{n}", billing_mode="postpaid", credit_limit="100")
        service.handle(usage(f"a{n}", f"u{n}", "1"))
    kept = service.view.kept.take(service.projector.position)
    assert kept is not None and set(kept.rows) == {str(account_uuid("a2")), str(account_uuid("a3"))}
    assert set(kept.bills) <= set(kept.rows) and all(len(b) == 1 for b in kept.bills.values())


def test_a_batch_holding_no_kept_account_does_not_read_the_log(two, monkeypatch):
    import projections.catchup

    here, there = two
    for account_id in ("acme", "other", "third"):
        open_account(there, account_id, billing_mode="postpaid", credit_limit="100")
    here.handle(usage("acme", "u1", "1"))  # `here` keeps acme's row only
    there.handle(usage("other", "u2", "2"))
    spans, read_span = [], projections.catchup.originators_between
    monkeypatch.setattr(projections.catchup, "originators_between",
                        lambda app, after, upto: (app is here.commands and spans.append((after, upto)))
                        or read_span(app, after, upto))
    here.handle(usage("third", "u3", "4"))  # an account `here` never kept: reading the log would not pay
    assert spans == []
    asked = reads_of(here, monkeypatch)
    there.handle(usage("other", "u4", "1"))
    here.handle(usage("acme", "u5", "8"))  # the cache was dropped with the position it stood at
    assert spans == [] and str(account_uuid("acme")) in asked
    assert here.account_row("acme").figures.expecting_invoice == Decimal(-9)
