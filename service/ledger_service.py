"""The composition root: one Ledger application, its read-model view and projector.

Every write goes through ``handle`` (a command value) or ``run``: the command appends its
events, then the read model is caught up to them before the caller answers, so a client
reads its own writes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from eventsourcing.persistence import Recording
from eventsourcing.postgres import PostgresFactory
from eventsourcing.sqlite import SQLiteFactory
from prometheus_client import Counter

from commands.api_keys import KeyCache
from commands.bookings import Booking, Clock, utc_now
from commands.ledger import Ledger
from commands.test_clocks import load_test_clock
from ledger_core.commands import Command, ExpireHolds
from ledger_core.errors import AccountNotFound
from persistence import schema
from persistence.appending import written_along
from persistence.database import (
    DatabaseConfig,
    apply_connection_options,
    check_reachable,
    creation_lock,
    ping_after_idle,
)
from persistence.receipt_outbox import ReceiptOutbox
from persistence.reminder_outbox import ReminderOutbox
from projections.catchup import Projector
from projections.rows import AccountRow
from projections.views import (
    DEFAULT_PREFIX,
    LedgerViewQueries,
    PostgresLedgerView,
    SQLiteLedgerView,
)
from service.group_commit import COMBINED, GroupCommit, GroupCommitLimits
from service.settings import Settings

R = TypeVar("R")
log = logging.getLogger(__name__)
CATCH_UP_FAILURES = Counter("ledger_read_model_catch_up_failures_total",
                            "Committed writes whose read-model catch-up failed afterwards (applied later)")


def make_view(app: Ledger, prefix: str = DEFAULT_PREFIX, *, create_tables: bool = True) -> LedgerViewQueries:
    """A read-model view in the same database (and connection pool) as the app's events."""
    factory = app.factory
    if isinstance(factory, PostgresFactory):
        view: LedgerViewQueries = PostgresLedgerView(factory.datastore, prefix=prefix)
    elif isinstance(factory, SQLiteFactory):
        view = SQLiteLedgerView(factory.datastore, prefix=prefix)
    else:
        raise ValueError(f"no read-model view for persistence {type(factory).__name__}")
    if create_tables:
        view.create_table()  # type: ignore[attr-defined]
    return view


class LedgerService:
    def __init__(self, settings: Settings, clock: Clock = utc_now, *, upgrade: bool = False) -> None:
        """Refuses a database at another schema version (persistence/schema.py) unless it is
        empty, which is brought to this code's version; ``upgrade`` applies what is pending."""
        self.settings = settings
        database = settings.database
        _ensure_sqlite_folder(database)
        apply_connection_options(database)
        check_reachable(database)
        env = database.eventsourcing_env()
        env["CREATE_TABLE"] = "y" if settings.create_tables else "n"
        env["AGGREGATE_CACHE_MAXSIZE"] = str(settings.warm_accounts)
        self.migrations_applied: list[schema.Migration] = []
        if not settings.create_tables:
            schema.require_current(database)
        with creation_lock(database) if settings.create_tables else nullcontext():
            versioned = settings.create_tables and not database.in_memory
            if versioned and not upgrade and schema.find(database).state is not schema.SchemaState.EMPTY:
                schema.require_current(database)
            self.commands = Ledger(env=env, clock=clock)
            self.commands.key_cache = KeyCache(settings.key_cache_ms / 1000)
            if isinstance(self.commands.factory, PostgresFactory):
                ping_after_idle(self.commands.factory.datastore.pool)
            self.view = make_view(self.commands, create_tables=settings.create_tables)
            self.view.kept.max_rows = settings.warm_accounts
            self.reminder_outbox = ReminderOutbox.of(self.commands, create_table=settings.create_tables)
            self.receipt_outbox = ReceiptOutbox.of(self.commands, create_table=settings.create_tables)
            self.view.receipts = self.receipt_outbox  # the live view queues receipts
            if versioned:
                self.migrations_applied = schema.pending(database)
                schema.apply(database, self.migrations_applied)
        self.projector = Projector(self.commands, self.view, settings.projection_batch_events)
        # The read model is written in the transaction of each command's append where the
        # view can be (PostgreSQL); else, and whenever that declines, it catches up after.
        self._along = self.projector if self.view.batches_in_transaction else None
        self.catch_up_failures = 0
        self.group_commit = GroupCommit(self.commands, self._write_alone, self._caught_up, GroupCommitLimits(
            settings.group_commit_max_commands, settings.group_commit_max_queued, settings.group_commit_wait_us))

    @property
    def clock(self) -> Clock:
        return self.commands.clock

    def run(self, command: Callable[[Ledger], R]) -> R:
        """Runs a command, then catches the read model up with what it wrote, unless its
        appends wrote the read model along (``Projector.prepare_along``).

        Once the command has returned, its write is committed: a failure to catch up
        (the database gone a moment, a bug in a projection) must not turn that into an
        error answer, which a client would retry. It is logged and counted; the next
        write, the consumer or `ledger catch-up` applies the events later."""
        with written_along(self._along):
            result = command(self.commands)
        until = result.position if isinstance(result, Booking) else None
        if isinstance(result, Booking) and until is None:
            return result  # nothing written
        self._caught_up(until, self.commands.written())
        return result

    def _caught_up(self, until: int | None, written: Sequence[Recording] = ()) -> None:
        last = until if until is not None else (written[-1].notification.id if written else None)
        if last is not None and last <= self.projector.applied_along:
            return  # written along with the events, in their transaction (Projector.write_along)
        try:
            self.projector.catch_up(until=until, written=written)
        except Exception:
            self.catch_up_failures += 1
            CATCH_UP_FAILURES.inc()
            log.exception("catching the read model up after a committed write failed; the write stands")

    def handle(self, command: Command) -> Any:
        """Hands the command to the ledger's dispatcher, then catches the read model up (see
        ``run``). Money movements go through group commit: concurrent ones in this process
        are decided and saved together, each answered with its own result."""
        if isinstance(command, COMBINED):
            with written_along(self._along):
                return self.group_commit.submit(command)
        return self._write_alone(command)

    def _write_alone(self, command: Command) -> Any:
        return self.run(lambda ledger: ledger.handle(command))

    def account_row(self, account_id: str) -> AccountRow:
        row = self.view.account(account_id)
        if row is None:
            raise AccountNotFound(f"no account {account_id!r}", account_id=account_id)
        return row

    def now_for(self, account_id: str | None) -> datetime:
        """The account's "now": its test clock's time if it is attached to one, else the
        clock's (also for no account: lists across accounts go by real time)."""
        if account_id is None:
            return self.clock()
        row = self.view.account(account_id)
        clock_id = None if row is None else row.test_clock_id
        return self.clock() if clock_id is None else self.test_clock_time(clock_id)

    def test_clock_time(self, clock_id: str) -> datetime:
        return load_test_clock(self.commands, clock_id, to_change=False).frozen_time

    def expire_due_reservations(self, now: datetime | None = None) -> dict[str, list[str]]:
        """Releases every hold past its expiry, account by account; returns what expired."""
        moment = now or self.clock()
        expired: dict[str, list[str]] = {}
        for account_id in sorted({hold.account_id for hold in self.view.due_holds(moment)}):
            if self.account_row(account_id).test_clock_id is not None:
                continue  # its holds expire on its test clock's time, when the clock is advanced
            released = self.handle(ExpireHolds(account_id, moment))
            if released:
                expired[account_id] = released
        return expired

    def close(self) -> None:
        self.commands.close()


def _ensure_sqlite_folder(database: DatabaseConfig) -> None:
    if database.sqlite_path is not None and not database.in_memory:
        Path(os.path.dirname(database.sqlite_path) or ".").mkdir(parents=True, exist_ok=True)
