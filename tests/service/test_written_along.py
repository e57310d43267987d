"""The read model written in the transaction of the append it follows from (PostgreSQL;
Projector.prepare_along, persistence/appending.py WrittenAlong): readable at the commit,
with no catch-up after it; never at the cost of the events (a failure rolls back its own
writes only); and with another process's batches landing between the rows' read and the
write, no event of either is ever lost."""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest

from ledger_core.commands import RecordUsage
from ledger_core.usage import UsageLine
from projections.bills import BillFilter
from service.ledger_service import LedgerService
from tests.service.helpers import last_position, open_account, two_services

pytestmark = pytest.mark.postgres


@pytest.fixture
def two(postgres_schema, clock) -> Iterator[tuple[LedgerService, LedgerService]]:
    with two_services(postgres_schema, clock) as both:
        yield both


def usage(account_id: str, key: str, amount: str) -> RecordUsage:
    return RecordUsage(account_id, idempotency_key=key, amount=Decimal(amount), line=UsageLine(product="sms"))


def elsewhere(service: LedgerService, command: RecordUsage) -> object:
    """Handled as another process would: in a context of its own (not the caller's append's)."""
    return contextvars.Context().run(service.handle, command)


def unbilled(service: LedgerService, account_id: str) -> Decimal:
    return -service.account_row(account_id).figures.expecting_invoice


def billed(service: LedgerService, account_id: str) -> Decimal:
    rows, _ = service.view.bills(BillFilter(account_id=account_id), 10)
    return sum((row.amount for row in rows), Decimal(0))


def catch_ups_of(service: LedgerService, monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    calls: list[int | None] = []
    original = service.projector.catch_up
    monkeypatch.setattr(service.projector, "catch_up",
                        lambda until=None, **kw: calls.append(until) or original(until=until, **kw))
    return calls


def test_a_write_is_readable_at_its_commit_without_a_catch_up(two, monkeypatch):
    here, _ = two
    open_account(here, "acme", billing_mode="postpaid", credit_limit="100")
    calls = catch_ups_of(here, monkeypatch)
    booked = here.handle(usage("acme", "u1", "1.25"))
    assert calls == []  # no second transaction: the append's own wrote the read model
    assert here.view.position(here.projector.name) == booked.position == last_position(here)
    assert unbilled(here, "acme") == Decimal("1.25") and billed(here, "acme") == Decimal("1.25")


def test_a_failing_read_model_write_rolls_back_alone_and_the_catch_up_applies_the_events(two, monkeypatch, caplog):
    here, _ = two
    open_account(here, "acme", billing_mode="postpaid", credit_limit="100")
    flush, failed = here.view._flush, []

    def broken(cursor):  # the first write: the one along with the append
        flush(cursor)
        if not failed:
            failed.append(cursor.execute("SELECT 1 / 0"))  # after the rows: the savepoint must undo them

    monkeypatch.setattr(here.view, "_flush", broken)
    calls = catch_ups_of(here, monkeypatch)
    with caplog.at_level(logging.WARNING, logger="persistence.recorders"):
        booked = here.handle(usage("acme", "u1", "2"))
    assert "not written with an append" in caplog.text
    assert booked.position == last_position(here)  # the events were stored all the same
    assert calls == [booked.position]  # and the catch-up applied them, once
    assert unbilled(here, "acme") == Decimal("2") and billed(here, "acme") == Decimal("2")


@pytest.mark.parametrize("landing", [["other"], ["acme"], ["other", "acme"]])
def test_another_process_s_write_between_the_read_and_the_write_is_never_lost(two, monkeypatch, landing):
    """`here` reads its rows for acme, then `there` books on the accounts ``landing`` names
    before `here` writes (`here` keeps other's row from before): no event may be lost, at
    that write or at later ones that start from the rows `here` keeps."""
    here, there = two
    for account_id in ("acme", "other"):
        open_account(here, account_id, billing_mode="postpaid", credit_limit="100")
    here.handle(usage("other", "o1", "1"))  # `here` keeps other's row
    preread, landed = here.view.preread, []

    def meanwhile(*args, **kwargs):
        read = preread(*args, **kwargs)
        if not landed:
            landed.extend(elsewhere(there, usage(a, f"{a}-there", "2")) for a in landing)
        return read

    monkeypatch.setattr(here.view, "preread", meanwhile)
    here.handle(usage("acme", "a1", "8"))
    monkeypatch.undo()
    here.handle(usage("other", "o3", "16"))  # from here's kept rows, unless they were dropped
    here.handle(usage("acme", "a3", "32"))
    there_on = {a: Decimal(2) if a in landing else Decimal(0) for a in ("acme", "other")}
    assert (unbilled(here, "acme"), billed(here, "acme")) == (Decimal(40) + there_on["acme"],) * 2
    assert (unbilled(here, "other"), billed(here, "other")) == (Decimal(17) + there_on["other"],) * 2


def test_another_process_s_write_on_other_accounts_spares_the_rows_read(two, monkeypatch):
    here, there = two
    for account_id in ("acme", "other"):
        open_account(here, account_id, billing_mode="postpaid", credit_limit="100")
    preread, reads = here.view.preread, []
    accounts = here.view._accounts_by_aggregate

    def meanwhile(*args, **kwargs):
        read = preread(*args, **kwargs)
        elsewhere(there, usage("other", "o1", "2"))
        reads.clear()
        return read

    monkeypatch.setattr(here.view, "preread", meanwhile)
    monkeypatch.setattr(here.view, "_accounts_by_aggregate", lambda keys: reads.extend(keys) or accounts(keys))
    calls = catch_ups_of(here, monkeypatch)
    here.handle(usage("acme", "a1", "8"))
    assert reads == [] and calls == []  # acme's row, read before other's event, was still current
    assert (unbilled(here, "acme"), unbilled(here, "other")) == (Decimal(8), Decimal(2))


def test_an_append_never_waits_for_the_read_model_s_lock_and_the_catch_up_applies_it(two, monkeypatch):
    """Another writer (a consumer's catch-up, a rebuild's swap) holds the view's write lock:
    the append, which holds the events table's lock, does not wait for it (every other
    append would wait too); the catch-up after it applies the events once the lock is free."""
    here, _ = two
    open_account(here, "acme", billing_mode="postpaid", credit_limit="100")
    calls = catch_ups_of(here, monkeypatch)
    holder = psycopg.connect(here.settings.database.url, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (here.view._lock_key,))
    released = threading.Timer(0.3, lambda: holder.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))",
                                                           (here.view._lock_key,)))
    released.start()
    try:
        booked = here.handle(usage("acme", "u1", "3"))
    finally:
        released.join()
        holder.close()
    assert calls == [booked.position]  # not written along: caught up after, once the lock was free
    assert unbilled(here, "acme") == Decimal(3) and billed(here, "acme") == Decimal(3)
