"""The bills read model: one bill per account, product and billing cycle.

A bill sums the cycle's usage of one product (per application, AppKey and unit in its
lines), the part of it drawn on overdraft, and whether it is settled:

- prepaid: Cleared while the account's funds cover all its spending (overdraft 0);
  Pending from a usage that draws on overdraft until the overdraft is paid back;
- postpaid: Pending until the invoice that took its usage is paid in full; usage that
  arrives later (late usage) makes it Pending again until the next invoice is paid.

Bills are read into the batch (one account's pending bills at a time) and written
back whole, so the exact sums never depend on SQL arithmetic (SQLite keeps text).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ledger_core.cycles import Bound, local_date
from ledger_core.invoicing import add_into
from ledger_core.usage import UsageLine
from persistence.dialect import lower_bound, upper_bound

if TYPE_CHECKING:
    from persistence.dialect import Dialect

BILL_COLUMNS = (
    "bill_no", "account_id", "currency", "product", "cycle_start", "cycle_end", "quantity", "unit", "amount",
    "overdraft", "status", "invoice_id", "lines", "created_position", "updated_at", "cycle_first_day",
)
MAX_LINES_PER_BILL = 1_000  # applications x AppKeys x units of one product in one cycle
MAX_PREFETCH = 1_000  # bill numbers per bulk read
PENDING, CLEARED = "Pending", "Cleared"


def bill_number(account_id: str, product: str, cycle_start: datetime) -> str:
    """Stable (a rebuild gives the same), unique, and safe in a URL whatever the product is called."""
    digest = hashlib.sha256(f"{account_id}\x00{product}\x00{cycle_start.isoformat()}".encode()).digest()
    return f"B{cycle_start:%Y%m}-{base64.b32encode(digest[:10]).decode()}"


@dataclass
class BillRow:
    bill_no: str
    account_id: str
    currency: str
    product: str
    cycle_start: datetime
    cycle_end: datetime
    created_position: int
    updated_at: datetime
    cycle_first_day: str  # ISO: the cycle's first local day, which day and month filters compare
    quantity: Decimal | None = None
    unit: str | None = None  # None when the product was measured in several units
    amount: Decimal = Decimal("0.000000")
    overdraft: Decimal = Decimal("0.000000")
    status: str = PENDING
    invoice_id: str | None = None
    # A line per channel account, application, AppKey and unit: channel_account,
    # application_id, application_name (the latest given), app_key, unit, quantity, amount.
    lines: list[dict[str, Any]] = field(default_factory=list)

    def add(self, cost: Decimal, quantity: Decimal | None, unit: str | None, source: UsageSource) -> None:
        self.amount += cost
        key = (source.channel_account, source.application_id, source.app_key, unit)
        line = next((x for x in self.lines if (x["channel_account"], x["application_id"], x["app_key"], x["unit"]) ==
                     key), None)
        if line is None:
            if len(self.lines) >= MAX_LINES_PER_BILL:
                line = self.lines[-1]  # beyond the limit the rest is summed on the last line
            else:
                line = {"channel_account": source.channel_account, "application_id": source.application_id,
                        "application_name": None, "app_key": source.app_key, "unit": unit, "quantity": None,
                        "amount": Decimal("0.000000")}
                self.lines.append(line)
        if source.application_name is not None and line["application_id"] == source.application_id:
            line["application_name"] = source.application_name
        add_into(line, cost, quantity)
        units = {x["unit"] for x in self.lines}
        self.unit = units.pop() if len(units) == 1 else None
        quantities = [x["quantity"] for x in self.lines if x["quantity"] is not None]
        self.quantity = sum(quantities, Decimal(0)) if self.unit is not None and quantities else None


@dataclass(frozen=True)
class UsageSource:
    """Where a usage came from, as its event's usage line tells."""

    channel_account: str | None
    application_id: str | None
    application_name: str | None
    app_key: str | None

    @classmethod
    def of(cls, event: Any) -> UsageSource:
        line = UsageLine.of_event(event)
        return cls(line.channel_account, line.application_id, line.application_name, line.app_key)


@dataclass(frozen=True)
class BillFilter:
    account_id: str | None = None
    product: str | None = None
    status: str | None = None
    cycle_from: Bound | None = None  # cycles starting at or after (a day or month: on or after its first day)
    cycle_to: Bound | None = None  # cycles starting before (a day or month: on or before its last day)
    before_position: int | None = None  # the page cursor


class BillSQL:
    def __init__(self, dialect: Dialect, qualify: Callable[[str], str], index_prefix: str) -> None:
        self.d = dialect
        self.bills = qualify("bills")
        self.index_prefix = index_prefix

    def ddl(self) -> list[str]:
        a, t, p = self.d.amount_type, self.d.time_type, self.index_prefix
        return [
            f"CREATE TABLE IF NOT EXISTS {self.bills} ("
            "bill_no TEXT PRIMARY KEY, account_id TEXT NOT NULL, currency TEXT NOT NULL, product TEXT NOT NULL, "
            f"cycle_start {t} NOT NULL, cycle_end {t} NOT NULL, quantity {a}, unit TEXT, amount {a} NOT NULL, "
            f"overdraft {a} NOT NULL, status TEXT NOT NULL, invoice_id TEXT, lines TEXT NOT NULL, "
            f"created_position BIGINT NOT NULL UNIQUE, updated_at {t} NOT NULL, cycle_first_day TEXT NOT NULL)",
            # Lists page by created_position under one filter: an index for each that pages.
            f"CREATE INDEX IF NOT EXISTS {p}_bills_account ON {self.bills} (account_id, status, created_position)",
            f"CREATE INDEX IF NOT EXISTS {p}_bills_account_age ON {self.bills} (account_id, created_position)",
            f"CREATE INDEX IF NOT EXISTS {p}_bills_status ON {self.bills} (status, created_position)",
            f"CREATE INDEX IF NOT EXISTS {p}_bills_product ON {self.bills} (product, created_position)",
            f"CREATE INDEX IF NOT EXISTS {p}_bills_cycle ON {self.bills} (cycle_start, product)",
        ]

    def dump(self) -> list[tuple[str, str]]:
        return [("bills", f"SELECT * FROM {self.bills} ORDER BY bill_no{self.d.bytewise}")]

    def upsert(self) -> str:
        updates = ", ".join(f"{c} = excluded.{c}" for c in BILL_COLUMNS[1:])
        return (f"INSERT INTO {self.bills} ({', '.join(BILL_COLUMNS)}) "
                f"VALUES ({', '.join([self.d.param] * len(BILL_COLUMNS))}) ON CONFLICT (bill_no) DO UPDATE SET {updates}")

    def select_one(self) -> str:
        return f"SELECT * FROM {self.bills} WHERE bill_no = {self.d.param}"

    def select_many(self, count: int) -> str:
        if self.d.param == "%s":  # PostgreSQL: one array parameter
            return f"SELECT * FROM {self.bills} WHERE bill_no = ANY(%s)"
        return f"SELECT * FROM {self.bills} WHERE bill_no IN ({', '.join('?' * count)})"

    def select_pending(self) -> str:
        return f"SELECT * FROM {self.bills} WHERE account_id = {self.d.param} AND status = '{PENDING}'"

    def conditions(self, f: BillFilter) -> list[tuple[str, Any]]:
        return [
            ("1 = 1", ()),
            ("account_id = ?", f.account_id),
            ("product = ?", f.product),
            ("status = ?", f.status),
            *lower_bound(self.d, f.cycle_from, "cycle_start >= ?", "cycle_first_day >= ?"),
            *upper_bound(self.d, f.cycle_to, "cycle_start < ?", "cycle_first_day <= ?"),
            ("created_position < ?", f.before_position),
        ]


class BillCodec:
    def __init__(self, dialect: Dialect) -> None:
        self.d = dialect

    def params(self, r: BillRow) -> tuple[Any, ...]:
        d = self.d
        lines = json.dumps([{k: (None if v is None else str(v)) for k, v in x.items()} for x in r.lines],
                           sort_keys=True)
        return (r.bill_no, r.account_id, r.currency, r.product, d.time_in(r.cycle_start), d.time_in(r.cycle_end),
                d.amount_in(r.quantity), r.unit, d.amount_in(r.amount), d.amount_in(r.overdraft), r.status,
                r.invoice_id, lines, r.created_position, d.time_in(r.updated_at), r.cycle_first_day)

    def row(self, r: Any) -> BillRow:
        d = self.d
        lines = [
            {"channel_account": x.get("channel_account"), "application_id": x["application_id"],
             "application_name": x.get("application_name"), "app_key": x["app_key"], "unit": x["unit"],
             "quantity": None if x["quantity"] is None else Decimal(x["quantity"]), "amount": Decimal(x["amount"])}
            for x in json.loads(r["lines"])
        ]
        return BillRow(
            bill_no=r["bill_no"], account_id=r["account_id"], currency=r["currency"], product=r["product"],
            cycle_start=d.time_out(r["cycle_start"]), cycle_end=d.time_out(r["cycle_end"]),
            created_position=r["created_position"], updated_at=d.time_out(r["updated_at"]),
            cycle_first_day=r["cycle_first_day"], quantity=d.amount_out(r["quantity"]), unit=r["unit"], amount=d.amount_out(r["amount"]),
            overdraft=d.amount_out(r["overdraft"]), status=r["status"], invoice_id=r["invoice_id"], lines=lines,
        )


class BillChanges:
    """The bills one batch touches: read on first use (outside the write lock, like every
    batch read), changed in memory, written back whole when the batch is flushed."""

    def __init__(self, read_one: Callable[[str], BillRow | None], read_pending: Callable[[str], list[BillRow]],
                 read_many: Callable[[list[str]], list[BillRow]], known: Iterable[BillRow] = ()) -> None:
        """``known``: bills as they stand at the batch's position, kept from an earlier batch."""
        self._read_one, self._read_pending, self._read_many = read_one, read_pending, read_many
        self._bills: dict[str, BillRow] = {row.bill_no: row for row in known}
        self._used: set[str] = set()  # read or written by this batch (kept for the next)
        self._absent: set[str] = set()  # looked up in bulk and not there: new bills
        self.numbers: dict[tuple[Any, ...], str] = {}  # (account, product, cycle start) -> bill number
        self._pending_loaded: set[str] = set()
        self._changed: set[str] = set()

    def prefetch(self, bill_numbers: set[str]) -> None:
        """Reads the bills a batch will touch in one query instead of one each."""
        wanted = sorted(bill_numbers - self._bills.keys() - self._absent)
        for start in range(0, len(wanted), MAX_PREFETCH):
            chunk = wanted[start:start + MAX_PREFETCH]
            found = {row.bill_no: row for row in self._read_many(chunk)}
            self._bills.update(found)
            self._absent.update(n for n in chunk if n not in found)

    def get(self, bill_no: str) -> BillRow | None:
        if bill_no not in self._bills:
            if bill_no in self._absent:  # a new bill, until this batch puts it
                return None
            row = self._read_one(bill_no)
            if row is None:
                return None
            self._bills[bill_no] = row
        self._used.add(bill_no)
        return self._bills[bill_no]

    def put(self, row: BillRow) -> None:
        self._bills[row.bill_no] = row
        self._changed.add(row.bill_no)
        self._used.add(row.bill_no)

    def pending(self, account_id: str) -> list[BillRow]:
        """The account's Pending bills, as this batch has them."""
        if account_id not in self._pending_loaded:
            for row in self._read_pending(account_id):
                self._bills.setdefault(row.bill_no, row)
            self._pending_loaded.add(account_id)
        found = [b for b in self._bills.values() if b.account_id == account_id and b.status == PENDING]
        self._used.update(b.bill_no for b in found)
        return found

    def used(self) -> list[BillRow]:
        return [self._bills[n] for n in self._used]

    def changed(self, row: BillRow) -> None:
        self._changed.add(row.bill_no)
        self._used.add(row.bill_no)

    @property
    def changed_count(self) -> int:
        return len(self._changed)

    def flush(self, codec: BillCodec, write: Callable[[list[tuple[Any, ...]]], None]) -> None:
        """Hands the changed bills' rows, in bill number order, to ``write`` (an upsert)."""
        if self._changed:
            write([codec.params(self._bills[n]) for n in sorted(self._changed)])


def bills_invoiced(pending: list[BillRow], lines: list[dict[str, Any]], time_zone: str) -> list[BillRow]:
    """Postpaid: the pending bills whose usage these invoice lines take (same product, days
    inside the bill's cycle); they are settled when that invoice is paid."""
    taken = []
    for bill in pending:
        first, last = local_date(bill.cycle_start, time_zone).isoformat(), local_date(bill.cycle_end, time_zone).isoformat()
        if any(line["kind"] == "usage" and line["product"] == bill.product and line["date_from"] < last
               and line["date_to"] >= first for line in lines):
            taken.append(bill)
    return taken
