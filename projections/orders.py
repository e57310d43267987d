"""The orders read model: one row per order, for the order list, its filters and export.

Each order event carries what its row needs (``applied``), so a row never needs the aggregate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ledger_core.cycles import Bound
from ledger_core.errors import InvariantViolation
from persistence.dialect import lower_bound, upper_bound

if TYPE_CHECKING:
    from persistence.dialect import Dialect

ORDER_COLUMNS = (
    "order_id", "aggregate_id", "account_id", "kind", "product", "status", "quantity", "unit_price", "amount",
    "currency", "details", "ordered_by", "resource_id", "created_at", "created_day", "payment_method",
    "payment_reference", "paid_by", "paid_at", "search", "created_position", "updated_at", "running_price",
    "running_unit", "running_fees", "powered_on_since",
)


@dataclass
class OrderRow:
    order_id: str
    aggregate_id: str
    account_id: str
    kind: str
    product: str
    status: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    currency: str
    details: str
    ordered_by: str
    resource_id: str | None
    created_at: datetime
    created_day: str  # ISO UTC day, which day and month filters compare
    created_position: int
    updated_at: datetime
    payment_method: str | None = None
    payment_reference: str = ""
    paid_by: str = ""
    paid_at: datetime | None = None
    running_price: Decimal | None = None
    running_unit: str | None = None
    running_fees: Decimal = Decimal("0.000000")
    powered_on_since: datetime | None = None

    @property
    def search(self) -> str:
        return f"{self.order_id} {self.product} {self.resource_id or ''}".lower()


def applied(row: OrderRow | None, event: Any, position: int) -> OrderRow:
    name = type(event).__name__
    if name == "Placed":
        return OrderRow(
            order_id=event.order_id, aggregate_id=str(event.originator_id), account_id=event.account_id,
            kind=event.kind, product=event.product, status="pending_payment", quantity=event.quantity,
            unit_price=event.unit_price, amount=event.amount, currency=event.currency, details=event.details,
            ordered_by=event.ordered_by, resource_id=event.resource_id, created_at=event.placed_at,
            created_day=event.placed_at.date().isoformat(), created_position=position, updated_at=event.timestamp,
            running_price=event.running_price, running_unit=event.running_unit)
    if row is None:
        raise InvariantViolation(f"a {name} event arrived for an order the read model lacks")
    row.updated_at = event.timestamp
    if name == "Paid":
        row.status, row.payment_method, row.payment_reference = "completed", event.method, event.reference
        row.paid_by, row.paid_at = event.paid_by, event.paid_at
    elif name == "Cancelled":
        row.status = "cancelled"
    elif name == "PowerReported":
        if event.state == "on" and row.powered_on_since is None:
            row.powered_on_since = event.at
        elif event.state == "off":
            row.powered_on_since = None
    elif name == "Metered":
        row.running_fees += event.amount
        if event.goes_on:
            row.powered_on_since = event.end
    return row


@dataclass(frozen=True)
class OrderFilter:
    account_id: str | None = None
    kind: str | None = None
    status: str | None = None
    product: str | None = None
    resource_id: str | None = None  # a cloud phone's id
    created_from: Bound | None = None  # a day or month: UTC days
    created_to: Bound | None = None
    text: str | None = None  # in the order id, product and resource id
    powered_on: bool | None = None  # cloud phones running now (the cycle close meters them)
    before_position: int | None = None


class OrderSQL:
    def __init__(self, dialect: Dialect, qualify: Callable[[str], str], index_prefix: str) -> None:
        self.d = dialect
        self.orders = qualify("orders")
        self.index_prefix = index_prefix

    def ddl(self) -> list[str]:
        a, t, p = self.d.amount_type, self.d.time_type, self.index_prefix
        return [
            f"CREATE TABLE IF NOT EXISTS {self.orders} ("
            "order_id TEXT PRIMARY KEY, aggregate_id TEXT NOT NULL UNIQUE, account_id TEXT NOT NULL, "
            f"kind TEXT NOT NULL, product TEXT NOT NULL, status TEXT NOT NULL, quantity {a} NOT NULL, "
            f"unit_price TEXT NOT NULL, amount {a} NOT NULL, currency TEXT NOT NULL, details TEXT NOT NULL, "
            f"ordered_by TEXT NOT NULL, resource_id TEXT, created_at {t} NOT NULL, created_day TEXT NOT NULL, "
            f"payment_method TEXT, payment_reference TEXT NOT NULL, paid_by TEXT NOT NULL, paid_at {t}, "
            f"search TEXT NOT NULL, created_position BIGINT NOT NULL UNIQUE, updated_at {t} NOT NULL, "
            f"running_price TEXT, running_unit TEXT, running_fees {a} NOT NULL, powered_on_since {t})",
            f"CREATE INDEX IF NOT EXISTS {p}_orders_account ON {self.orders} (account_id, created_position)",
            f"CREATE INDEX IF NOT EXISTS {p}_orders_status ON {self.orders} (status, created_position)",
        ]

    def dump(self) -> list[tuple[str, str]]:
        return [("orders", f"SELECT * FROM {self.orders} ORDER BY order_id{self.d.bytewise}")]

    def upsert(self) -> str:
        updates = ", ".join(f"{c} = excluded.{c}" for c in ORDER_COLUMNS[1:])
        return (f"INSERT INTO {self.orders} ({', '.join(ORDER_COLUMNS)}) "
                f"VALUES ({', '.join([self.d.param] * len(ORDER_COLUMNS))}) ON CONFLICT (order_id) DO UPDATE SET {updates}")

    def select_by(self, column: str) -> str:
        return f"SELECT * FROM {self.orders} WHERE {column} = {self.d.param}"

    def conditions(self, f: OrderFilter, pattern: str | None) -> list[tuple[str, Any]]:
        return [
            ("1 = 1", ()),
            ("account_id = ?", f.account_id),
            ("kind = ?", f.kind),
            ("status = ?", f.status),
            ("product = ?", f.product),
            ("resource_id = ?", f.resource_id),
            *lower_bound(self.d, f.created_from, "created_at >= ?", "created_day >= ?"),
            *upper_bound(self.d, f.created_to, "created_at < ?", "created_day <= ?"),
            ("search LIKE ? ESCAPE '\\'", pattern),
            ("powered_on_since IS NOT NULL AND 1 = ?", 1 if f.powered_on else None),
            ("created_position < ?", f.before_position),
        ]


class OrderCodec:
    def __init__(self, dialect: Dialect) -> None:
        self.d = dialect

    def params(self, r: OrderRow) -> tuple[Any, ...]:
        d = self.d
        return (r.order_id, r.aggregate_id, r.account_id, r.kind, r.product, r.status, d.amount_in(r.quantity),
                f"{r.unit_price:f}", d.amount_in(r.amount), r.currency, r.details, r.ordered_by, r.resource_id,
                d.time_in(r.created_at), r.created_day, r.payment_method, r.payment_reference, r.paid_by,
                d.time_in(r.paid_at), r.search, r.created_position, d.time_in(r.updated_at),
                None if r.running_price is None else f"{r.running_price:f}", r.running_unit,
                d.amount_in(r.running_fees), d.time_in(r.powered_on_since))

    def row(self, r: Any) -> OrderRow:
        d = self.d
        return OrderRow(
            order_id=r["order_id"], aggregate_id=r["aggregate_id"], account_id=r["account_id"], kind=r["kind"],
            product=r["product"], status=r["status"], quantity=d.amount_out(r["quantity"]),
            unit_price=Decimal(r["unit_price"]), amount=d.amount_out(r["amount"]), currency=r["currency"],
            details=r["details"], ordered_by=r["ordered_by"], resource_id=r["resource_id"],
            created_at=d.time_out(r["created_at"]), created_day=r["created_day"],
            created_position=r["created_position"], updated_at=d.time_out(r["updated_at"]),
            payment_method=r["payment_method"], payment_reference=r["payment_reference"], paid_by=r["paid_by"],
            paid_at=d.time_out(r["paid_at"]),
            running_price=None if r["running_price"] is None else Decimal(r["running_price"]),
            running_unit=r["running_unit"], running_fees=d.amount_out(r["running_fees"]),
            powered_on_since=d.time_out(r["powered_on_since"]))
