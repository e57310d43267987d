"""The reminder outbox: one row per payment reminder to send (persistence/mail_outbox.py says
how rows are claimed and sent). A reminder whose invoice was paid before it went out is
cancelled by the sender."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from persistence.dialect import POSTGRES
from persistence.mail_outbox import (
    DELIVERY_COLUMNS,
    MAX_CLAIM_ROWS,
    MAX_LIST_ROWS,
    Delivery,
    LeasedOutbox,
    MailStatus,
    delivery_of,
)

__all__ = ["MAX_CLAIM_ROWS", "MAX_LIST_ROWS", "NewReminder", "ReminderOutbox", "ReminderRow", "ReminderStatus"]
ReminderStatus = MailStatus
TABLE = "reminder_outbox"


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
class ReminderRow(Reminder, Delivery):
    pass


NEW_COLUMNS = ("batch_key", "request_fingerprint", "invoice_id", "invoice_number", "account_id", "recipients",
               "subject", "body", "currency", "amount_outstanding", "due_on", "created_at", "status", "attempts",
               "next_attempt_at")


class ReminderOutbox(LeasedOutbox[ReminderRow]):
    TABLE = TABLE

    def ddl(self) -> list[str]:
        a, t = self.d.amount_type, self.d.time_type
        key = "BIGSERIAL PRIMARY KEY" if self.d is POSTGRES else "INTEGER PRIMARY KEY AUTOINCREMENT"
        return [
            f"CREATE TABLE IF NOT EXISTS {self.table} ("
            f"id {key}, batch_key TEXT NOT NULL, request_fingerprint TEXT NOT NULL, invoice_id TEXT NOT NULL, "
            "invoice_number TEXT NOT NULL, account_id TEXT NOT NULL, recipients TEXT NOT NULL, subject TEXT NOT NULL, "
            f"body TEXT NOT NULL, currency TEXT NOT NULL, amount_outstanding {a} NOT NULL, due_on TEXT NOT NULL, "
            f"{DELIVERY_COLUMNS.format(t=t)}, UNIQUE (batch_key, invoice_id))",
            *self._delivery_ddl(),
        ]

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
                    r.due_on, d.time_in(now), MailStatus.PENDING.value, 0, d.time_in(now),
                ))
                added += cursor.rowcount
        return added

    def _row(self, r: Any) -> ReminderRow:
        d = self.d
        return ReminderRow(
            batch_key=r["batch_key"], invoice_id=r["invoice_id"], invoice_number=r["invoice_number"],
            account_id=r["account_id"], recipients=json.loads(r["recipients"]), subject=r["subject"], body=r["body"],
            currency=r["currency"], amount_outstanding=d.amount_out(r["amount_outstanding"]), due_on=r["due_on"],
            **delivery_of(d, r),
        )

