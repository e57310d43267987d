"""A write that loses its race (another process took the account's next version, or the
request's key) is retried at once on PostgreSQL, whatever the state of the append's
pipeline: the library's commit of an aborted pipeline could surface it as a lost
connection, which its retry slept 0.2 s on before the IntegrityError came
(persistence/recorders.py PostgresAuditedRecorder._append). Every race here is retried,
the repeat replays, the books are whole, and nothing sleeps."""

from __future__ import annotations

import eventsourcing.utils
import pytest

from commands import unit_of_work
from ledger_core.commands import RecordUsage
from ledger_core.usage import UsageLine
from service.ledger_service import LedgerService
from service.settings import Settings
from tests.service.helpers import figures, open_account

pytestmark = pytest.mark.postgres


def usage(key: str) -> RecordUsage:
    return RecordUsage("acme", idempotency_key=key, amount="0.01", line=UsageLine(product="sms"))


def test_a_lost_race_is_retried_at_once_and_a_key_taken_elsewhere_replays_at_once(postgres_schema, monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(eventsourcing.utils, "sleep", slept.append)
    here, there = LedgerService(Settings(database=postgres_schema)), LedgerService(Settings(database=postgres_schema))
    try:
        open_account(here, credit_limit="100")
        load, stale = unit_of_work.load_account, []
        monkeypatch.setattr(unit_of_work, "load_account",
                            lambda app, account_id: stale.pop() if stale and app is here.commands else load(app, account_id))
        retried = here.commands.conflicts_retried
        for n in range(10):  # the race: this write reads the account, the other process writes it, this one saves
            stale.append(here.commands.account("acme"))
            there.handle(usage(f"elsewhere-{n}"))
            assert here.handle(usage(f"here-{n}")).after.version == 2 * n + 3
        assert here.commands.conflicts_retried == retried + 10

        assert here.handle(usage("elsewhere-0")).replayed  # decided here as new: its key collides, the retry replays
        assert figures(here)["expecting_invoice"] == "-0.200000"
        assert slept == [], slept
    finally:
        here.close()
        there.close()
