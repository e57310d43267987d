"""The receipt outbox: one row per receipt to e-mail (a recharge or a payment received),
queued by the live read model in the transaction that books the money's row, so each
receipt is queued exactly once (persistence/mail_outbox.py says how rows are sent)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from persistence.dialect import POSTGRES
from persistence.mail_outbox import DELIVERY_COLUMNS, Delivery, LeasedOutbox, MailStatus, delivery_of

TABLE = "receipt_outbox"
DUE_AT_ONCE = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True, kw_only=True)
class NewReceipt:
    receipt_no: str  # the transaction number of the money received
    account_id: str
    recipients: list[str]
    currency: str
    amount: Decimal


@dataclass(frozen=True, kw_only=True)
class ReceiptRow(NewReceipt, Delivery):
    pass


NEW_COLUMNS = ("receipt_no", "account_id", "recipients", "currency", "amount", "created_at", "status", "attempts",
               "next_attempt_at")


class ReceiptOutbox(LeasedOutbox[ReceiptRow]):
    TABLE = TABLE

    def ddl(self) -> list[str]:
        a, t = self.d.amount_type, self.d.time_type
        key = "BIGSERIAL PRIMARY KEY" if self.d is POSTGRES else "INTEGER PRIMARY KEY AUTOINCREMENT"
        return [
            f"CREATE TABLE IF NOT EXISTS {self.table} (id {key}, receipt_no TEXT NOT NULL UNIQUE, "
            f"account_id TEXT NOT NULL, recipients TEXT NOT NULL, currency TEXT NOT NULL, amount {a} NOT NULL, "
            f"{DELIVERY_COLUMNS.format(t=t)})",
            *self._delivery_ddl(),
        ]

    def enqueue(self, cursor: Any, receipts: list[NewReceipt], now: datetime) -> None:
        """Queues receipts in the caller's transaction, due at once whatever a sender's clock
        says; one already queued is left as it is."""
        p, d = self.d.param, self.d
        insert = (f"INSERT INTO {self.table} ({', '.join(NEW_COLUMNS)}) VALUES ({', '.join([p] * len(NEW_COLUMNS))}) "
                  "ON CONFLICT (receipt_no) DO NOTHING")
        cursor.executemany(insert, [(r.receipt_no, r.account_id, json.dumps(r.recipients), r.currency,
                                     d.amount_in(r.amount), d.time_in(now), MailStatus.PENDING.value, 0,
                                     d.time_in(DUE_AT_ONCE)) for r in receipts])

    def of_receipt(self, receipt_no: str) -> ReceiptRow | None:
        with self._read() as cursor:
            cursor.execute(f"SELECT * FROM {self.table} WHERE receipt_no = {self.d.param}", (receipt_no,))
            row = cursor.fetchone()
        return None if row is None else self._row(row)

    def _row(self, r: Any) -> ReceiptRow:
        d = self.d
        return ReceiptRow(receipt_no=r["receipt_no"], account_id=r["account_id"], recipients=json.loads(r["recipients"]),
                          currency=r["currency"], amount=d.amount_out(r["amount"]), **delivery_of(d, r))
