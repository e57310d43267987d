"""The subscriptions read model: one row per subscription, for lists with filters and search.

A row is worked out from the subscription's events alone (``applied``): each event that
changes the items carries them, so a row never needs the aggregate. Deleted subscriptions
keep their row, marked, and lists leave them out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ledger_core.errors import InvariantViolation
from ledger_core.figures import ZERO

if TYPE_CHECKING:
    from persistence.dialect import Dialect

SUBSCRIPTION_COLUMNS = (
    "subscription_id", "account_id", "status", "deleted", "plan_id", "plan_name", "period", "currency",
    "amount_per_period", "period_start", "period_end", "next_payment_date", "cancel_at_period_end", "items",
    "search", "created_at", "created_position", "updated_at", "aggregate_id", "subscriber", "payment_method_id",
)


@dataclass
class SubscriptionRow:
    subscription_id: str
    account_id: str
    period: str
    currency: str
    created_at: datetime
    created_position: int
    updated_at: datetime
    aggregate_id: str  # the aggregate's UUID: later events name only that
    status: str = "active"
    deleted: bool = False
    period_start: str = ""  # ISO local days
    period_end: str = ""  # exclusive
    cancel_at_period_end: bool = False
    subscriber: str = ""
    payment_method_id: str | None = None
    # package first: plan_id, kind, name, version, price, quantity
    items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def plan_id(self) -> str:
        return str(self.items[0]["plan_id"])

    @property
    def plan_name(self) -> str:
        return str(self.items[0]["name"])

    @property
    def amount_per_period(self) -> Decimal:
        return sum((Decimal(x["price"]) * x["quantity"] for x in self.items), ZERO)

    @property
    def next_payment_date(self) -> str | None:
        return self.period_end if self.status == "active" and not self.cancel_at_period_end else None

    @property
    def search(self) -> str:
        """What ``q`` finds: the subscription id and the names and ids of its plans, lower-cased."""
        return " ".join([self.subscription_id, self.subscriber,
                         *(f"{x['plan_id']} {x['name']}" for x in self.items)]).lower()


def _item(plain: dict[str, Any]) -> dict[str, Any]:
    offer = plain["offer"]
    return {"plan_id": offer["plan_id"], "kind": offer["kind"], "name": offer["name"], "version": offer["version"],
            "price": str(offer["price"]), "quantity": plain["quantity"]}


def applied(row: SubscriptionRow | None, event: Any, position: int) -> SubscriptionRow:
    """The row after ``event`` (a Subscription event); ``row`` None only for the first."""
    name = type(event).__name__
    if name == "Started":
        return SubscriptionRow(
            subscription_id=event.subscription_id, account_id=event.account_id, period=event.period,
            currency=event.package["offer"]["currency"], created_at=event.timestamp, created_position=position,
            updated_at=event.timestamp, aggregate_id=str(event.originator_id), subscriber=event.subscriber,
            payment_method_id=event.payment_method_id, period_start=_day(event.period_start), period_end=_day(event.period_end),
            items=[_item(event.package)])
    if row is None:
        raise InvariantViolation(f"a {name} event arrived for a subscription the read model lacks")
    row.updated_at = event.timestamp
    if name == "AddonAdded":
        row.items.append(_item(event.item))
    elif name == "AddonRemoved":
        row.items = [row.items[0], *(x for x in row.items[1:] if x["plan_id"] != event.plan_id)]
    elif name == "PackageChanged":
        row.items[0] = _item(event.item)
    elif name == "ItemRepriced":
        repriced = _item(event.item)
        row.items = [repriced if x["plan_id"] == repriced["plan_id"] else x for x in row.items]
    elif name == "CancellationScheduled":
        row.cancel_at_period_end = event.at_period_end
    elif name == "Cancelled":
        row.items, row.status, row.cancel_at_period_end = [_item(x) for x in event.items], "cancelled", False
    elif name in ("Reactivated", "Renewed"):
        row.items, row.status = [_item(x) for x in event.items], "active"
        row.period_start, row.period_end = _day(event.period_start), _day(event.period_end)
    elif name == "Deleted":
        row.deleted = True
    return row  # PackageChangeScheduled changes nothing a list shows


def _day(value: date | str) -> str:
    return value if isinstance(value, str) else value.isoformat()


@dataclass(frozen=True)
class SubscriptionFilter:
    account_id: str | None = None
    status: str | None = None
    plan_id: str | None = None
    period: str | None = None
    payment_method_id: str | None = None
    ends_by: str | None = None  # ISO local day: periods ending (exclusive end) on or before it
    text: str | None = None  # in the subscription id, its plans' ids and names, the subscriber
    before_position: int | None = None  # the page cursor


class SubscriptionSQL:
    def __init__(self, dialect: Dialect, qualify: Callable[[str], str], index_prefix: str) -> None:
        self.d = dialect
        self.subscriptions = qualify("subscriptions")
        self.index_prefix = index_prefix

    def ddl(self) -> list[str]:
        a, t, p = self.d.amount_type, self.d.time_type, self.index_prefix
        return [
            f"CREATE TABLE IF NOT EXISTS {self.subscriptions} ("
            "subscription_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, status TEXT NOT NULL, "
            "deleted BOOLEAN NOT NULL, plan_id TEXT NOT NULL, plan_name TEXT NOT NULL, period TEXT NOT NULL, "
            f"currency TEXT NOT NULL, amount_per_period {a} NOT NULL, period_start TEXT NOT NULL, "
            "period_end TEXT NOT NULL, next_payment_date TEXT, cancel_at_period_end BOOLEAN NOT NULL, "
            f"items TEXT NOT NULL, search TEXT NOT NULL, created_at {t} NOT NULL, "
            f"created_position BIGINT NOT NULL UNIQUE, updated_at {t} NOT NULL, aggregate_id TEXT NOT NULL UNIQUE, "
            "subscriber TEXT NOT NULL, payment_method_id TEXT)",
            f"CREATE INDEX IF NOT EXISTS {p}_subscriptions_account ON {self.subscriptions} "
            "(account_id, created_position)",
            f"CREATE INDEX IF NOT EXISTS {p}_subscriptions_status ON {self.subscriptions} (status, created_position)",
        ]

    def dump(self) -> list[tuple[str, str]]:
        return [("subscriptions", f"SELECT * FROM {self.subscriptions} ORDER BY subscription_id{self.d.bytewise}")]

    def upsert(self) -> str:
        updates = ", ".join(f"{c} = excluded.{c}" for c in SUBSCRIPTION_COLUMNS[1:])
        return (f"INSERT INTO {self.subscriptions} ({', '.join(SUBSCRIPTION_COLUMNS)}) "
                f"VALUES ({', '.join([self.d.param] * len(SUBSCRIPTION_COLUMNS))}) "
                f"ON CONFLICT (subscription_id) DO UPDATE SET {updates}")

    def select_one(self) -> str:
        return f"SELECT * FROM {self.subscriptions} WHERE subscription_id = {self.d.param}"

    def select_by_aggregate(self) -> str:
        return f"SELECT * FROM {self.subscriptions} WHERE aggregate_id = {self.d.param}"

    def conditions(self, f: SubscriptionFilter, pattern: str | None) -> list[tuple[str, Any]]:
        return [
            ("deleted = ?", False),
            ("account_id = ?", f.account_id),
            ("status = ?", f.status),
            ("plan_id = ?", f.plan_id),
            ("period = ?", f.period),
            ("payment_method_id = ?", f.payment_method_id),
            ("period_end <= ?", f.ends_by),
            ("search LIKE ? ESCAPE '\\'", pattern),
            ("created_position < ?", f.before_position),
        ]


class SubscriptionCodec:
    def __init__(self, dialect: Dialect) -> None:
        self.d = dialect

    def params(self, r: SubscriptionRow) -> tuple[Any, ...]:
        d = self.d
        return (r.subscription_id, r.account_id, r.status, r.deleted, r.plan_id, r.plan_name, r.period, r.currency,
                d.amount_in(r.amount_per_period), r.period_start, r.period_end, r.next_payment_date,
                r.cancel_at_period_end, json.dumps(r.items, sort_keys=True), r.search, d.time_in(r.created_at),
                r.created_position, d.time_in(r.updated_at), r.aggregate_id, r.subscriber, r.payment_method_id)

    def row(self, r: Any) -> SubscriptionRow:
        d = self.d
        return SubscriptionRow(
            subscription_id=r["subscription_id"], account_id=r["account_id"], period=r["period"],
            currency=r["currency"], created_at=d.time_out(r["created_at"]), created_position=r["created_position"],
            updated_at=d.time_out(r["updated_at"]), aggregate_id=r["aggregate_id"], subscriber=r["subscriber"],
            payment_method_id=r["payment_method_id"], status=r["status"], deleted=bool(r["deleted"]),
            period_start=r["period_start"], period_end=r["period_end"],
            cancel_at_period_end=bool(r["cancel_at_period_end"]), items=json.loads(r["items"]))
