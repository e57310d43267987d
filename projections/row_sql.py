"""The statements of the read models' own tables (accounts, balance details, holds, the
event index), for PostgreSQL and SQLite, and how their rows go in and come out.

The other tables' statements live beside their rows (bills.py, invoice_sql.py,
subscriptions.py, orders.py); the views that run them are in views.py.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from ledger_core.figures import BILLING_MODES, INVOICE_MODES, Figures
from persistence.dialect import POSTGRES, Dialect, json_field, sign_of
from projections.bills import BillSQL
from projections.invoice_sql import InvoiceSQL
from projections.orders import OrderSQL
from projections.rows import (
    MOVEMENT_TYPES,
    AccountFilter,
    AccountRow,
    EventFilter,
    EventRow,
    HoldRow,
    TransactionFilter,
    TransactionRow,
)
from projections.subscriptions import SubscriptionSQL

ACCOUNT_COLUMNS = (
    "account_id", "aggregate_id", "currency", "billing_mode", "invoice_mode", "usage_policy", "cycle_anchor_day", "tax_rate",
    "payer", "credit_limit", "expecting_invoice", "amount_due", "reserved", "current_balance", "usable_credits",
    "overdraft", "opened_at", "updated_at", "version", "position", "billing_settings", "low_balance_threshold",
)
TRANSACTION_COLUMNS = (
    "position", "account_id", "transaction_no", "booked_at", "occurred_at", "type", "item", "amount",
    "balance_after", "product", "application_id", "app_key", "quantity", "unit", "unit_price", "reference",
    "description", "application_name",
)
# See ReadModelSQL.query_indexes; about half the index entries a usage event writes.
QUERY_INDEXES = ("transactions_account", "transactions_type", "transactions_application", "events_account",
                 "events_account_time")
HOLD_COLUMNS = ("account_id", "reservation_id", "amount", "reserved_at", "expires_at")
EVENT_COLUMNS = ("position", "account_id", "version", "type", "time")
# The PostgreSQL types of the appended tables' columns, in the order above: COPY in the
# binary format needs them, and writes a row in about two thirds of the text format's time
# (timestamps and numerics are not turned into text and parsed back).
APPENDED_TYPES = {
    "transactions": ("int8", "text", "text", "timestamptz", "timestamptz", "text", "text", "numeric", "numeric",
                     "text", "text", "text", "numeric", "text", "text", "text", "text", "text"),
    "holds": ("text", "text", "numeric", "timestamptz", "timestamptz"),
    "events": ("int8", "text", "int4", "text", "timestamptz"),
}


def contains_pattern(text: str) -> str:
    """A LIKE pattern (with ESCAPE '\\') that finds ``text`` in lower-cased text, its own %, _ and \\ literal."""
    return "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class ReadModelSQL:
    """Statements for one set of read-model tables (a prefix names the set)."""

    def __init__(self, dialect: Dialect, prefix: str, schema: str | None) -> None:
        self.d = dialect
        qualify = (lambda name: f'"{schema}"."{prefix}_{name}"') if schema else (lambda name: f"{prefix}_{name}")
        self.accounts = qualify("accounts")
        self.transactions = qualify("transactions")
        self.holds = qualify("holds")
        self.events = qualify("events")
        self.index_prefix = prefix
        self.qualify = qualify
        self.invoicing = InvoiceSQL(dialect, qualify, prefix)
        self.billing = BillSQL(dialect, qualify, prefix)
        self.subscribing = SubscriptionSQL(dialect, qualify, prefix)
        self.ordering = OrderSQL(dialect, qualify, prefix)

    def ddl(self) -> list[str]:
        a, t = self.d.amount_type, self.d.time_type
        p = self.index_prefix
        return [
            f"CREATE TABLE IF NOT EXISTS {self.accounts} ("
            "account_id TEXT PRIMARY KEY, aggregate_id TEXT NOT NULL UNIQUE, currency TEXT NOT NULL, billing_mode TEXT NOT NULL, "
            "invoice_mode TEXT NOT NULL, usage_policy TEXT NOT NULL, cycle_anchor_day INTEGER NOT NULL, "
            f"tax_rate {a} NOT NULL, payer TEXT NOT NULL, credit_limit {a} NOT NULL, "
            f"expecting_invoice {a} NOT NULL, amount_due {a} NOT NULL, reserved {a} NOT NULL, "
            f"current_balance {a} NOT NULL, usable_credits {a} NOT NULL, overdraft {a} NOT NULL, "
            f"opened_at {t} NOT NULL, updated_at {t} NOT NULL, version INTEGER NOT NULL, position BIGINT NOT NULL, "
            "billing_settings TEXT NOT NULL, "
            f"low_balance_threshold {a})",
            # Newest customers first (GET /v1/accounts?sort=newest); schema version 2.
            f"CREATE INDEX IF NOT EXISTS {p}_accounts_opened ON {self.accounts} (opened_at, account_id)",
            f"CREATE TABLE IF NOT EXISTS {self.transactions} ("
            "position BIGINT PRIMARY KEY, account_id TEXT NOT NULL, transaction_no TEXT NOT NULL UNIQUE, "
            f"booked_at {t} NOT NULL, occurred_at {t} NOT NULL, type TEXT NOT NULL, item TEXT NOT NULL, "
            f"amount {a} NOT NULL, balance_after {a} NOT NULL, product TEXT, application_id TEXT, app_key TEXT, "
            f"quantity {a}, unit TEXT, unit_price TEXT, reference TEXT NOT NULL, description TEXT NOT NULL, "
            "application_name TEXT)",
            f"CREATE INDEX IF NOT EXISTS {p}_transactions_account ON {self.transactions} (account_id, position)",
            # A type filter (the recharges among millions of usage rows) pages without a walk.
            f"CREATE INDEX IF NOT EXISTS {p}_transactions_type ON {self.transactions} (account_id, type, position)",
            # The "cloud phone" filter: one application's rows of an account (schema version 4).
            f"CREATE INDEX IF NOT EXISTS {p}_transactions_application ON {self.transactions} "
            "(account_id, application_id, position)",
            f"CREATE TABLE IF NOT EXISTS {self.holds} ("
            f"account_id TEXT NOT NULL, reservation_id TEXT NOT NULL, amount {a} NOT NULL, "
            f"reserved_at {t} NOT NULL, expires_at {t}, PRIMARY KEY (account_id, reservation_id))",
            f"CREATE INDEX IF NOT EXISTS {p}_holds_expiry ON {self.holds} (expires_at)",
            f"CREATE TABLE IF NOT EXISTS {self.events} ("
            "position BIGINT PRIMARY KEY, account_id TEXT NOT NULL, version INTEGER NOT NULL, type TEXT NOT NULL, "
            f"time {t} NOT NULL, UNIQUE (account_id, version))",
            f"CREATE INDEX IF NOT EXISTS {p}_events_account ON {self.events} (account_id, position)",
            f"CREATE INDEX IF NOT EXISTS {p}_events_account_time ON {self.events} (account_id, time, version)",
            *self.invoicing.ddl(),
            *self.billing.ddl(),
            *self.subscribing.ddl(),
            *self.ordering.ddl(),
        ]

    def query_indexes(self) -> list[tuple[str, str]]:
        """(qualified name, statement) of the indexes of the append-only tables that only
        queries use: the projection never reads through them. A replay into fresh tables
        builds them once at its end, one sorted build each, instead of an entry per row."""
        statements = self.ddl()
        return [(self.qualify(name), next(s for s in statements if f" {self.index_prefix}_{name} ON " in s))
                for name in QUERY_INDEXES]

    def _params(self, count: int) -> str:
        return ", ".join([self.d.param] * count)

    def upsert_account(self) -> str:
        updates = ", ".join(f"{c} = excluded.{c}" for c in ACCOUNT_COLUMNS[1:])
        return (
            f"INSERT INTO {self.accounts} ({', '.join(ACCOUNT_COLUMNS)}) VALUES ({self._params(len(ACCOUNT_COLUMNS))}) "
            f"ON CONFLICT (account_id) DO UPDATE SET {updates}"
        )

    def select_account(self) -> str:
        return f"SELECT * FROM {self.accounts} WHERE account_id = {self.d.param}"

    def select_accounts_by_aggregate(self, count: int) -> str:
        if self.d is POSTGRES:
            return f"SELECT * FROM {self.accounts} WHERE aggregate_id = ANY(%s)"
        return f"SELECT * FROM {self.accounts} WHERE aggregate_id IN ({self._params(count)})"

    def aggregate_id_params(self, ids: list[str]) -> tuple[Any, ...]:
        return (ids,) if self.d is POSTGRES else tuple(ids)

    def copy_into(self, table: str, columns: tuple[str, ...]) -> str:
        """PostgreSQL's bulk load, far cheaper per row than INSERTs for append-only rows."""
        return f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"

    def insert_transaction(self) -> str:
        columns = ", ".join(TRANSACTION_COLUMNS)
        return f"INSERT INTO {self.transactions} ({columns}) VALUES ({self._params(len(TRANSACTION_COLUMNS))})"

    def insert_hold(self) -> str:
        return f"INSERT INTO {self.holds} ({', '.join(HOLD_COLUMNS)}) VALUES ({self._params(len(HOLD_COLUMNS))})"

    def delete_hold(self) -> str:
        return f"DELETE FROM {self.holds} WHERE account_id = {self.d.param} AND reservation_id = {self.d.param}"

    def _select(self, table: str, order: str, limit: int, *conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
        """SELECT * under the conditions whose value is not None; each ``?`` in a condition
        takes the value (a tuple fills several)."""
        where, params = [], []
        for clause, value in conditions:
            if value is None:
                continue
            values = value if isinstance(value, tuple) else (value,)
            where.append(clause.replace("?", self.d.param))
            params.extend(values)
        params.append(limit)
        return f"SELECT * FROM {table} WHERE {' AND '.join(where)} ORDER BY {order} LIMIT {self.d.param}", params

    def select_accounts(self, f: AccountFilter, limit: int) -> tuple[str, list[Any]]:
        amount_due, overdraft = sign_of(self.d, "amount_due"), sign_of(self.d, "overdraft")
        conditions: list[tuple[str, Any]] = [
            ("1 = 1", ()),
            ("billing_mode = ?", f.billing_mode), ("invoice_mode = ?", f.invoice_mode), ("currency = ?", f.currency),
        ]
        if f.has_amount_due is not None:
            conditions.append((f"{amount_due} < 0" if f.has_amount_due else f"{amount_due} >= 0", ()))
        if f.in_overdraft is not None:
            conditions.append((f"{overdraft} > 0" if f.in_overdraft else f"{overdraft} = 0", ()))
        if f.text:
            pattern = contains_pattern(f.text)
            searched = ["account_id", *(json_field(self.d, "payer", k) for k in ("name", "organization", "emails"))]
            conditions.append(("(" + " OR ".join(f"LOWER({c}) LIKE ? ESCAPE '\\'" for c in searched) + ")",
                               (pattern,) * len(searched)))
        if f.accounts is not None:
            conditions.append((f"account_id IN ({', '.join('?' for _ in f.accounts)})", tuple(f.accounts))
                              if f.accounts else ("1 = 0", ()))
        if f.after is not None:
            opened, account_id = f.after
            if f.newest_first:
                moment = self.d.time_in(datetime.fromisoformat(opened))
                conditions.append(("(opened_at < ? OR (opened_at = ? AND account_id < ?))", (moment, moment, account_id)))
            else:
                conditions.append(("account_id > ?", account_id))
        order = "opened_at DESC, account_id DESC" if f.newest_first else "account_id"
        return self._select(self.accounts, order, limit, *conditions)

    def select_transactions(self, f: TransactionFilter, limit: int) -> tuple[str, list[Any]]:
        text = None
        if f.text:
            pattern = contains_pattern(f.text)
            text = (pattern, pattern, pattern, pattern)
        return self._select(
            self.transactions, "position DESC", limit,
            ("account_id = ?", f.account_id),
            ("type = ?", f.type),
            ("product = ?", f.product),
            ("booked_at >= ?", self.d.time_in(f.booked_from)),
            ("booked_at < ?", self.d.time_in(f.booked_to)),
            ("occurred_at >= ?", self.d.time_in(f.occurred_from)),
            ("occurred_at < ?", self.d.time_in(f.occurred_to)),
            ("application_id = ?", f.application_id),
            ("(LOWER(reference) LIKE ? ESCAPE '\\' OR LOWER(COALESCE(product, '')) LIKE ? ESCAPE '\\' "
             "OR LOWER(COALESCE(application_name, '')) LIKE ? ESCAPE '\\' OR LOWER(transaction_no) LIKE ? ESCAPE '\\')",
             text),
            ("position < ?", f.before_position),
            ("position <= ?", f.as_of_position),
            ("booked_at <= ?", self.d.time_in(f.as_of_time)),
        )

    def insert_event(self) -> str:
        return f"INSERT INTO {self.events} ({', '.join(EVENT_COLUMNS)}) VALUES ({self._params(len(EVENT_COLUMNS))})"

    # "As of" answers. Positions rise with versions, so the last event by a position is
    # one index probe. Times need not (writers' clocks differ), so the answer by a time is
    # the highest version of any event stamped by then: read from the index alone.
    def select_version_at_position(self) -> str:
        p = self.d.param
        return (f"SELECT version FROM {self.events} WHERE account_id = {p} AND position <= {p} "
                "ORDER BY position DESC LIMIT 1")

    def select_version_at_time(self) -> str:
        p = self.d.param
        return f"SELECT MAX(version) AS version FROM {self.events} WHERE account_id = {p} AND time <= {p}"

    def select_events(self, f: EventFilter, limit: int) -> tuple[str, list[Any]]:
        return self._select(
            self.events, "position", limit,
            ("account_id = ?", f.account_id),
            ("type = ?", f.type),
            ("time >= ?", self.d.time_in(f.time_from)),
            ("time < ?", self.d.time_in(f.time_to)),
            ("position > ?", f.after_position),
        )

    def select_holds(self) -> str:
        return f"SELECT * FROM {self.holds} WHERE account_id = {self.d.param} ORDER BY reserved_at, reservation_id"

    def select_due_holds(self) -> str:
        p = self.d.param
        return (
            f"SELECT * FROM {self.holds} WHERE expires_at IS NOT NULL AND expires_at <= {p} "
            f"ORDER BY expires_at LIMIT {p}"
        )

    def dump(self) -> list[tuple[str, str]]:
        """Every row of every table, in the order of its key (rebuild.KEYS; text by its
        bytes), for rebuild comparisons."""
        b = self.d.bytewise
        return [
            ("accounts", f"SELECT * FROM {self.accounts} ORDER BY account_id{b}"),
            ("transactions", f"SELECT * FROM {self.transactions} ORDER BY position"),
            ("holds", f"SELECT * FROM {self.holds} ORDER BY account_id{b}, reservation_id{b}"),
            ("events", f"SELECT * FROM {self.events} ORDER BY position"),
            *self.invoicing.dump(),
            *self.billing.dump(),
            *self.subscribing.dump(),
            *self.ordering.dump(),
        ]


# -- rows <-> database values ------------------------------------------------------
class RowCodec:
    def __init__(self, dialect: Dialect) -> None:
        self.d = dialect

    def account_params(self, row: AccountRow) -> tuple[Any, ...]:
        d, f = self.d, row.figures
        return (
            row.account_id, row.aggregate_id, row.currency, f.billing_mode.value, f.invoice_mode.value, row.usage_policy,
            row.cycle_anchor_day, d.amount_in(row.tax_rate), json.dumps(row.payer, sort_keys=True),
            d.amount_in(f.credit_limit), d.amount_in(f.expecting_invoice), d.amount_in(f.amount_due),
            d.amount_in(f.reserved), d.amount_in(f.current_balance), d.amount_in(f.usable_credits),
            d.amount_in(f.overdraft), d.time_in(row.opened_at), d.time_in(row.updated_at), row.version, row.position,
            json.dumps(row.billing_settings, sort_keys=True),
            d.amount_in(row.low_balance_threshold),
        )

    def account(self, r: Any) -> AccountRow:
        d = self.d
        figures = Figures(
            billing_mode=BILLING_MODES[r["billing_mode"]],
            invoice_mode=INVOICE_MODES[r["invoice_mode"]],
            credit_limit=d.amount_out(r["credit_limit"]),
            expecting_invoice=d.amount_out(r["expecting_invoice"]),
            amount_due=d.amount_out(r["amount_due"]),
            reserved=d.amount_out(r["reserved"]),
        )
        return AccountRow(
            aggregate_id=r["aggregate_id"], account_id=r["account_id"], currency=r["currency"], usage_policy=r["usage_policy"],
            cycle_anchor_day=r["cycle_anchor_day"], tax_rate=d.amount_out(r["tax_rate"]),
            payer=json.loads(r["payer"]), figures=figures, opened_at=d.time_out(r["opened_at"]),
            updated_at=d.time_out(r["updated_at"]), version=r["version"], position=r["position"],
            billing_settings=json.loads(r["billing_settings"]),
            low_balance_threshold=d.amount_out(r["low_balance_threshold"]),
        )

    def transaction_params(self, row: TransactionRow) -> tuple[Any, ...]:
        d = self.d
        return (
            row.position, row.account_id, row.transaction_no, d.time_in(row.booked_at), d.time_in(row.occurred_at),
            row.type.value, row.item, d.amount_in(row.amount), d.amount_in(row.balance_after), row.product,
            row.application_id, row.app_key, d.amount_in(row.quantity), row.unit,
            None if row.unit_price is None else f"{row.unit_price:f}", row.reference, row.description,
            row.application_name,
        )

    def transaction(self, r: Any) -> TransactionRow:
        d = self.d
        return TransactionRow(
            position=r["position"], account_id=r["account_id"], transaction_no=r["transaction_no"],
            booked_at=d.time_out(r["booked_at"]), occurred_at=d.time_out(r["occurred_at"]),
            type=MOVEMENT_TYPES[r["type"]], item=r["item"], amount=d.amount_out(r["amount"]),
            balance_after=d.amount_out(r["balance_after"]), product=r["product"],
            application_id=r["application_id"], app_key=r["app_key"], quantity=d.amount_out(r["quantity"]),
            unit=r["unit"], unit_price=None if r["unit_price"] is None else Decimal(r["unit_price"]),
            reference=r["reference"], description=r["description"], application_name=r["application_name"],
        )

    def event_params(self, row: EventRow) -> tuple[Any, ...]:
        return (row.position, row.account_id, row.version, row.type, self.d.time_in(row.time))

    def event(self, r: Any) -> EventRow:
        return EventRow(r["position"], r["account_id"], r["version"], r["type"], self.d.time_out(r["time"]))

    def hold_params(self, row: HoldRow) -> tuple[Any, ...]:
        d = self.d
        return (row.account_id, row.reservation_id, d.amount_in(row.amount), d.time_in(row.reserved_at),
                d.time_in(row.expires_at))

    def hold(self, r: Any) -> HoldRow:
        d = self.d
        return HoldRow(
            account_id=r["account_id"], reservation_id=r["reservation_id"], amount=d.amount_out(r["amount"]),
            reserved_at=d.time_out(r["reserved_at"]), expires_at=d.time_out(r["expires_at"]),
        )
