"""Outboxes of mail to send (payment reminders, receipts), on PostgreSQL and SQLite: the
part they share. Each outbox is a table of its own beside the events, no read model: a
rebuild of the projections never touches it, because what was sent cannot be replayed.

A row goes pending -> sent, or pending -> failed (-> retried while attempts are left) ->
sent or exhausted (its last attempt failed: it leaves the due index, so dead rows never
slow a claim), or -> cancelled (an outbox may decide a row is no longer wanted). Senders
*claim* due rows by moving ``next_attempt_at`` past the lease end in one short
transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent senders claim
disjoint rows; ``BEGIN IMMEDIATE`` on SQLite); no transaction stays open while mail is sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Generic, TypeVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.postgres import PostgresFactory
from eventsourcing.sqlite import SQLiteFactory

from persistence.database import sqlite_write_transaction
from persistence.dialect import POSTGRES, SQLITE, Dialect

MAX_LIST_ROWS = 500
MAX_CLAIM_ROWS = 500
MAX_ERROR_CHARS = 1_000  # an SMTP error can quote a whole server reply: keep the row small
Row = TypeVar("Row")
# The columns every outbox has after its own: what senders read and write.
DELIVERY_COLUMNS = ("created_at {t} NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL, last_error TEXT, "
                    "sent_at {t}, next_attempt_at {t} NOT NULL")


class MailStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # the last attempt failed; retried while attempts < the sender's maximum
    EXHAUSTED = "exhausted"  # failed on the sender's last allowed attempt: not retried
    CANCELLED = "cancelled"  # no longer wanted (a reminder's invoice was paid before it went out)


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """Where a row stands in being sent: the columns every outbox has."""

    id: int
    created_at: datetime
    status: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None
    next_attempt_at: datetime


def delivery_of(dialect: Dialect, r: Any) -> dict[str, Any]:
    """A row's delivery columns, as Delivery's fields."""
    return {"id": r["id"], "created_at": dialect.time_out(r["created_at"]), "status": r["status"],
            "attempts": r["attempts"], "last_error": r["last_error"], "sent_at": dialect.time_out(r["sent_at"]),
            "next_attempt_at": dialect.time_out(r["next_attempt_at"])}


class LeasedOutbox(Generic[Row]):
    TABLE: ClassVar[str]

    def __init__(self, dialect: Dialect, datastore: Any, table: str) -> None:
        self.d = dialect
        self.datastore = datastore
        self.table = table

    @classmethod
    def of(cls, app: Application[UUID], *, create_table: bool) -> Any:
        """The outbox in the database (and connection pool) of the app's events."""
        factory = app.factory
        if isinstance(factory, PostgresFactory):
            outbox = cls(POSTGRES, factory.datastore, f'"{factory.datastore.schema}"."{cls.TABLE}"')
        elif isinstance(factory, SQLiteFactory):
            outbox = cls(SQLITE, factory.datastore, cls.TABLE)
        else:
            raise ValueError(f"no {cls.TABLE} for persistence {type(factory).__name__}")
        if create_table:
            outbox.create_table()
        return outbox

    def ddl(self) -> list[str]:
        raise NotImplementedError

    def _delivery_ddl(self) -> list[str]:
        """The delivery columns' indexes: what senders scan (only rows still to send, oldest
        due first), and what lists filter on."""
        return [
            f"CREATE INDEX IF NOT EXISTS {self.TABLE}_due ON {self.table} (next_attempt_at, id) "
            "WHERE status IN ('pending', 'failed')",
            f"CREATE INDEX IF NOT EXISTS {self.TABLE}_status ON {self.table} (status, id)",
        ]

    def _row(self, r: Any) -> Row:
        raise NotImplementedError

    def create_table(self) -> None:
        with self._write() as cursor:
            for statement in self.ddl():
                cursor.execute(statement)

    # -- transactions ------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[Any]:
        if self.d is POSTGRES:
            with self.datastore.transaction(commit=True) as cursor:
                yield cursor
            return
        with sqlite_write_transaction(self.datastore) as cursor:
            yield cursor

    @contextmanager
    def _read(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=False) as cursor:
            yield cursor

    # -- reading -----------------------------------------------------------------
    def page(self, status: str | None, limit: int,
             before_id: int | None = None) -> tuple[list[Row], int | None]:
        """A page of rows, newest first, and the cursor of the next page (None: last)."""
        if not 1 <= limit <= MAX_LIST_ROWS:
            raise ValueError(f"limit must be 1..{MAX_LIST_ROWS}")
        p = self.d.param
        where, params = ["1 = 1"], []
        if status is not None:
            where.append(f"status = {p}")
            params.append(status)
        if before_id is not None:
            where.append(f"id < {p}")
            params.append(before_id)
        with self._read() as cursor:
            cursor.execute(f"SELECT * FROM {self.table} WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT {p}",
                           (*params, limit + 1))
            rows = [self._row(r) for r in cursor.fetchall()]
        more = len(rows) > limit
        return rows[:limit], (rows[limit - 1].id if more else None)  # type: ignore[attr-defined]

    # -- sending -----------------------------------------------------------------
    def claim(self, now: datetime, lease_until: datetime, limit: int, max_attempts: int) -> list[Row]:
        """Takes up to ``limit`` rows due at ``now`` with attempts left, and hides them from
        other senders until ``lease_until`` (a crashed sender's rows come back after it)."""
        if not 1 <= limit <= MAX_CLAIM_ROWS:
            raise ValueError(f"limit must be 1..{MAX_CLAIM_ROWS}")
        p, d = self.d.param, self.d
        lock = " FOR UPDATE SKIP LOCKED" if d is POSTGRES else ""
        statement = (
            f"UPDATE {self.table} SET next_attempt_at = {p} WHERE id IN ("
            f"SELECT id FROM {self.table} WHERE status IN ('pending', 'failed') AND next_attempt_at <= {p} "
            f"AND attempts < {p} ORDER BY next_attempt_at, id LIMIT {p}{lock}) RETURNING *"
        )
        with self._write() as cursor:
            cursor.execute(statement, (d.time_in(lease_until), d.time_in(now), max_attempts, limit))
            rows = [self._row(r) for r in cursor.fetchall()]
        return sorted(rows, key=lambda row: row.id)  # type: ignore[attr-defined]

    def mark_sent(self, row_id: int, now: datetime) -> None:
        p = self.d.param
        self._update(f"UPDATE {self.table} SET status = 'sent', attempts = attempts + 1, last_error = NULL, "
                     f"sent_at = {p} WHERE id = {p}", (self.d.time_in(now), row_id))

    def mark_failed(self, row_id: int, error: str, retry_at: datetime, *, last_attempt: bool) -> None:
        p = self.d.param
        status = MailStatus.EXHAUSTED if last_attempt else MailStatus.FAILED
        self._update(f"UPDATE {self.table} SET status = {p}, attempts = attempts + 1, last_error = {p}, "
                     f"next_attempt_at = {p} WHERE id = {p}",
                     (status.value, error[:MAX_ERROR_CHARS], self.d.time_in(retry_at), row_id))

    def release(self, row_ids: list[int], now: datetime) -> None:
        """Hands claimed rows back unsent (the lease ran short): due again at once."""
        p = self.d.param
        for row_id in row_ids:
            self._update(f"UPDATE {self.table} SET next_attempt_at = {p} WHERE id = {p}",
                         (self.d.time_in(now), row_id))

    def _update(self, statement: str, params: tuple[Any, ...]) -> None:
        with self._write() as cursor:
            cursor.execute(statement, params)

    def mark_cancelled(self, row_id: int, reason: str) -> None:
        p = self.d.param
        self._update(f"UPDATE {self.table} SET status = 'cancelled', last_error = {p} WHERE id = {p}",
                     (reason[:MAX_ERROR_CHARS], row_id))
