"""The reminder outbox: one row per payment reminder to send, on PostgreSQL and SQLite.

It lives beside the events but is no read model: a rebuild of the projections never
touches it, because what was sent cannot be replayed from events.

A row goes pending -> sent, or pending -> failed (-> retried while attempts are left) ->
sent or exhausted (its last attempt failed: it leaves the due index, so dead rows never
slow a claim), or -> cancelled when the invoice was paid before its reminder went out. Senders
*claim* due rows by moving ``next_attempt_at`` past the lease end in one short
transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent senders claim
disjoint rows; ``BEGIN IMMEDIATE`` on SQLite); no transaction stays open while mail is sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.postgres import PostgresFactory
from eventsourcing.sqlite import SQLiteFactory

from persistence.database import sqlite_write_transaction
from persistence.dialect import POSTGRES, SQLITE, Dialect

TABLE = "reminder_outbox"
MAX_LIST_ROWS = 500
MAX_CLAIM_ROWS = 500
MAX_ERROR_CHARS = 1_000  # an SMTP error can quote a whole server reply: keep the row small


class ReminderStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # the last attempt failed; retried while attempts < the sender's maximum
    EXHAUSTED = "exhausted"  # failed on the sender's last allowed attempt: not retried
    CANCELLED = "cancelled"  # the invoice was paid before the reminder was sent


@dataclass(frozen=True, kw_only=True)
class Reminder:
    """What a reminder says, and to whom."""

    batch_key: str
    invoice_id: str
    invoice_number: str
    account_id: str
    recipients: list[str]
    subject: str
    body: str
    currency: str
    amount_outstanding: Decimal
    due_on: str


@dataclass(frozen=True, kw_only=True)
class NewReminder(Reminder):
    request_fingerprint: str


@dataclass(frozen=True, kw_only=True)
class ReminderRow(Reminder):
    id: int
    created_at: datetime
    status: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None
    next_attempt_at: datetime


NEW_COLUMNS = ("batch_key", "request_fingerprint", "invoice_id", "invoice_number", "account_id", "recipients",
               "subject", "body", "currency", "amount_outstanding", "due_on", "created_at", "status", "attempts",
               "next_attempt_at")


class ReminderOutbox:
    def __init__(self, dialect: Dialect, datastore: Any, table: str) -> None:
        self.d = dialect
        self.datastore = datastore
        self.table = table

    @classmethod
    def of(cls, app: Application[UUID], *, create_table: bool) -> ReminderOutbox:
        """The outbox in the database (and connection pool) of the app's events."""
        factory = app.factory
        if isinstance(factory, PostgresFactory):
            outbox = cls(POSTGRES, factory.datastore, f'"{factory.datastore.schema}"."{TABLE}"')
        elif isinstance(factory, SQLiteFactory):
            outbox = cls(SQLITE, factory.datastore, TABLE)
        else:
            raise ValueError(f"no reminder outbox for persistence {type(factory).__name__}")
        if create_table:
            outbox.create_table()
        return outbox

    def ddl(self) -> list[str]:
        a, t = self.d.amount_type, self.d.time_type
        key = "BIGSERIAL PRIMARY KEY" if self.d is POSTGRES else "INTEGER PRIMARY KEY AUTOINCREMENT"
        return [
            f"CREATE TABLE IF NOT EXISTS {self.table} ("
            f"id {key}, batch_key TEXT NOT NULL, request_fingerprint TEXT NOT NULL, invoice_id TEXT NOT NULL, "
            "invoice_number TEXT NOT NULL, account_id TEXT NOT NULL, recipients TEXT NOT NULL, subject TEXT NOT NULL, "
            f"body TEXT NOT NULL, currency TEXT NOT NULL, amount_outstanding {a} NOT NULL, due_on TEXT NOT NULL, "
            f"created_at {t} NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL, last_error TEXT, "
            f"sent_at {t}, next_attempt_at {t} NOT NULL, UNIQUE (batch_key, invoice_id))",
            # What senders scan: only rows still to send, oldest due first.
            f"CREATE INDEX IF NOT EXISTS {TABLE}_due ON {self.table} (next_attempt_at, id) "
            "WHERE status IN ('pending', 'failed')",
            f"CREATE INDEX IF NOT EXISTS {TABLE}_status ON {self.table} (status, id)",
        ]

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

    # -- queueing ----------------------------------------------------------------
    def fingerprint_of(self, batch_key: str) -> str | None:
        """The request fingerprint an idempotency key was first used with (None: never used)."""
        with self._read() as cursor:
            cursor.execute(f"SELECT request_fingerprint FROM {self.table} WHERE batch_key = {self.d.param} LIMIT 1",
                           (batch_key,))
            row = cursor.fetchone()
        return None if row is None else row["request_fingerprint"]

    def add(self, reminders: list[NewReminder], now: datetime) -> int:
        """Queues a page of reminders in one transaction; returns how many were new (a
        reminder its batch already holds for that invoice is left as it is)."""
        p, d = self.d.param, self.d
        insert = (f"INSERT INTO {self.table} ({', '.join(NEW_COLUMNS)}) VALUES ({', '.join([p] * len(NEW_COLUMNS))}) "
                  "ON CONFLICT (batch_key, invoice_id) DO NOTHING")
        added = 0
        with self._write() as cursor:
            for r in reminders:
                cursor.execute(insert, (
                    r.batch_key, r.request_fingerprint, r.invoice_id, r.invoice_number, r.account_id,
                    json.dumps(r.recipients), r.subject, r.body, r.currency, d.amount_in(r.amount_outstanding),
                    r.due_on, d.time_in(now), ReminderStatus.PENDING.value, 0, d.time_in(now),
                ))
                added += cursor.rowcount
        return added

    # -- reading -----------------------------------------------------------------
    def page(self, status: str | None, limit: int,
             before_id: int | None = None) -> tuple[list[ReminderRow], int | None]:
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
        return rows[:limit], (rows[limit - 1].id if more else None)

    def _row(self, r: Any) -> ReminderRow:
        d = self.d
        return ReminderRow(
            id=r["id"], batch_key=r["batch_key"], invoice_id=r["invoice_id"], invoice_number=r["invoice_number"],
            account_id=r["account_id"], recipients=json.loads(r["recipients"]), subject=r["subject"], body=r["body"],
            currency=r["currency"], amount_outstanding=d.amount_out(r["amount_outstanding"]), due_on=r["due_on"],
            created_at=d.time_out(r["created_at"]), status=r["status"], attempts=r["attempts"],
            last_error=r["last_error"], sent_at=d.time_out(r["sent_at"]),
            next_attempt_at=d.time_out(r["next_attempt_at"]),
        )

    # -- sending -----------------------------------------------------------------
    def claim(self, now: datetime, lease_until: datetime, limit: int, max_attempts: int) -> list[ReminderRow]:
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
        return sorted(rows, key=lambda row: row.id)

    def mark_sent(self, reminder_id: int, now: datetime) -> None:
        p = self.d.param
        self._update(f"UPDATE {self.table} SET status = 'sent', attempts = attempts + 1, last_error = NULL, "
                     f"sent_at = {p} WHERE id = {p}", (self.d.time_in(now), reminder_id))

    def mark_failed(self, reminder_id: int, error: str, retry_at: datetime, *, last_attempt: bool) -> None:
        p = self.d.param
        status = ReminderStatus.EXHAUSTED if last_attempt else ReminderStatus.FAILED
        self._update(f"UPDATE {self.table} SET status = {p}, attempts = attempts + 1, last_error = {p}, "
                     f"next_attempt_at = {p} WHERE id = {p}",
                     (status.value, error[:MAX_ERROR_CHARS], self.d.time_in(retry_at), reminder_id))

    def mark_cancelled(self, reminder_id: int, reason: str) -> None:
        p = self.d.param
        self._update(f"UPDATE {self.table} SET status = 'cancelled', last_error = {p} WHERE id = {p}",
                     (reason[:MAX_ERROR_CHARS], reminder_id))

    def release(self, reminder_ids: list[int], now: datetime) -> None:
        """Hands claimed rows back unsent (the lease ran short): due again at once."""
        p = self.d.param
        for reminder_id in reminder_ids:
            self._update(f"UPDATE {self.table} SET next_attempt_at = {p} WHERE id = {p}",
                         (self.d.time_in(now), reminder_id))

    def _update(self, statement: str, params: tuple[Any, ...]) -> None:
        with self._write() as cursor:
            cursor.execute(statement, params)
