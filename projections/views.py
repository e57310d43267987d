"""The SQL of the read models, for PostgreSQL and SQLite, and nothing else.

Each view is a library ``TrackingRecorder``: its tables live in the same database as
the events, and every batch of read-model changes is written in one transaction with
the tracking record of the last event it applied. A batch is refused if another
writer moved the tracking position first, so each event is applied exactly once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder
from psycopg.sql import SQL, Identifier

from ledger_core.errors import InvariantViolation
from ledger_core.figures import BillingMode, Figures, InvoiceMode
from persistence.database import NO_STATEMENT_TIMEOUT, sqlite_write_transaction
from persistence.dialect import POSTGRES, SQLITE, Dialect, json_field, sign_of
from persistence.receipt_outbox import NewReceipt, ReceiptOutbox
from projections import bulk
from projections.bills import BILL_COLUMNS, BillChanges, BillCodec, BillFilter, BillRow, BillSQL
from projections.bulk import upsert_rows
from projections.invoice_sql import INVOICE_TABLES, InvoiceChanges, InvoiceCodec, InvoiceSQL
from projections.kept import Kept, KeptRows
from projections.orders import OrderCodec, OrderFilter, OrderRow, OrderSQL
from projections.row_changes import RowChanges
from projections.rows import (
    AccountFilter,
    AccountRow,
    EventFilter,
    EventRow,
    HoldRow,
    InvoiceFilter,
    InvoiceLineRow,
    InvoiceRow,
    MovementType,
    Page,
    PaymentRow,
    TransactionFilter,
    TransactionRow,
)
from projections.subscriptions import (
    SubscriptionCodec,
    SubscriptionFilter,
    SubscriptionRow,
    SubscriptionSQL,
)

DEFAULT_PREFIX = "rm"
# One set of tables; "tracking" is the library's.
TABLES = ("accounts", "transactions", "holds", "events", *INVOICE_TABLES, "bills", "subscriptions", "orders",
          "tracking")
MAX_PAGE_ROWS = 500
MAX_FETCH_ROWS = MAX_PAGE_ROWS + 1  # a full page and one row more, which tells whether another page follows
MAX_DUE_HOLDS = 1_000
DUMP_PAGE_ROWS = 2_000  # rows a comparison of read models holds per table and side at once


class StalePosition(Exception):
    """Another batch was written after this one read its position: compute it again."""


class TooLarge(Exception):
    """A batch too large to write inside another transaction's pipeline (batch_in)."""


@dataclass
class Preread:
    """What a batch_in needs, read before its transaction: the rows at ``position``."""

    position: int
    identity: Any
    keys: set[str]  # the accounts' aggregate ids, as text
    bill_numbers: Callable[[dict[str, AccountRow]], set[str]]  # the bills the batch adds to, given the rows
    changed_between: Callable[[int, int], AbstractSet[str] | None]  # accounts changed from one position to another
    kept: Kept | None  # the view's kept rows it was read with, to keep again once written
    rows: dict[str, AccountRow] = field(default_factory=dict)
    bills: BillChanges | None = None


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
            billing_mode=BillingMode(r["billing_mode"]),
            invoice_mode=InvoiceMode(r["invoice_mode"]),
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
            type=MovementType(r["type"]), item=r["item"], amount=d.amount_out(r["amount"]),
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


# -- a batch: the changes of many events, written in one transaction ----------------
class Batch:
    """Read-model changes computed in memory from the rows as they stood at ``position``."""

    def __init__(self, position: int, accounts: dict[str, AccountRow], bills: BillChanges,
                 subscriptions: RowChanges[SubscriptionRow], orders: RowChanges[OrderRow]) -> None:
        self.position = position
        self._accounts = accounts  # by aggregate id, prefetched
        self._keys: dict[UUID, str] = {}
        self._changed: set[str] = set()
        self._transactions: list[TransactionRow] = []
        self._opened_holds: dict[tuple[str, str], HoldRow] = {}
        self._closed_holds: list[tuple[str, str]] = []
        self._events: list[EventRow] = []
        self._tracking: Tracking | None = None
        self.invoicing = InvoiceChanges()
        self.bills = bills
        self.subscriptions = subscriptions
        self.orders = orders
        self.receipts: list[NewReceipt] = []  # queued by the live read model only (LedgerViewQueries.receipts)
        self.kept: Kept | None = None  # batch_in's rows to keep, once its caller's transaction has committed

    def account(self, aggregate_id: UUID) -> AccountRow:
        """The (mutable) row of the account an event belongs to."""
        key = self._key(aggregate_id)
        row = self._accounts.get(key)
        if row is None:
            raise InvariantViolation(f"an event arrived for an account the read model lacks: {key}")
        self._changed.add(key)
        return row

    def peek_account(self, aggregate_id: UUID) -> AccountRow | None:
        """The account's row as the batch has it, without marking it changed."""
        return self._accounts.get(self._key(aggregate_id))

    def _key(self, aggregate_id: UUID) -> str:
        # Rows are keyed by the id's text; each event asks two or three times (str(UUID) is
        # Python code, about half a microsecond).
        key = self._keys.get(aggregate_id)
        if key is None:
            key = self._keys[aggregate_id] = str(aggregate_id)
        return key

    def put_account(self, row: AccountRow) -> None:
        self._accounts[row.aggregate_id] = row
        self._changed.add(row.aggregate_id)

    def add_transaction(self, row: TransactionRow) -> None:
        self._transactions.append(row)

    def add_event(self, row: EventRow) -> None:
        self._events.append(row)

    def open_hold(self, row: HoldRow) -> None:
        self._opened_holds[(row.account_id, row.reservation_id)] = row

    def close_hold(self, account_id: str, reservation_id: str) -> None:
        if self._opened_holds.pop((account_id, reservation_id), None) is None:
            self._closed_holds.append((account_id, reservation_id))

    def rows(self) -> dict[str, AccountRow]:
        return self._accounts

    def staged(self, dialect: Dialect) -> bool:
        """Whether a table's rows go through COPY (bulk.py), which a pipeline cannot carry."""
        sizes = (len(self._changed), len(self._transactions), len(self._opened_holds), len(self._events),
                 self.bills.changed_count)
        return bulk.staged(dialect, max(sizes))

    @property
    def final_position(self) -> int:
        return self._tracking.notification_id if self._tracking else self.position

    def track(self, tracking: Tracking) -> None:
        if tracking.notification_id <= (self._tracking.notification_id if self._tracking else self.position):
            raise InvariantViolation(f"events must be applied in order: {tracking.notification_id}")
        self._tracking = tracking

    def flush(self, sql: ReadModelSQL, codec: RowCodec, cursor: Any, insert_tracking: Any) -> None:
        if self._changed:
            rows = [codec.account_params(self._accounts[key]) for key in sorted(self._changed)]
            upsert_rows(cursor, sql.d, sql.accounts, ACCOUNT_COLUMNS, "account_id", rows, sql.upsert_account())
        if self._closed_holds:
            cursor.executemany(sql.delete_hold(), self._closed_holds)
        appends = (
            ("transactions", TRANSACTION_COLUMNS, sql.insert_transaction(), map(codec.transaction_params, self._transactions)),
            ("holds", HOLD_COLUMNS, sql.insert_hold(), map(codec.hold_params, self._opened_holds.values())),
            ("events", EVENT_COLUMNS, sql.insert_event(), map(codec.event_params, self._events)),
        )
        for name, columns, insert, rows in appends:
            rows = list(rows)
            if not rows:
                continue
            if bulk.staged(sql.d, len(rows)):  # fewer: one statement a row is cheaper
                with cursor.copy(sql.copy_into(sql.qualify(name), columns)) as copy:
                    copy.set_types(APPENDED_TYPES[name])
                    for row in rows:
                        copy.write_row(row)
            else:
                cursor.executemany(insert, rows)
        self.invoicing.flush(sql.invoicing, InvoiceCodec(sql.d), cursor)
        self.bills.flush(BillCodec(sql.d), lambda rows: upsert_rows(
            cursor, sql.d, sql.billing.bills, BILL_COLUMNS, "bill_no", rows, sql.billing.upsert()))
        self.subscriptions.flush(sql.subscribing.upsert(), SubscriptionCodec(sql.d).params, cursor)
        self.orders.flush(sql.ordering.upsert(), OrderCodec(sql.d).params, cursor)
        if self._tracking is not None:
            insert_tracking(cursor, self._tracking)


class LedgerViewQueries:
    """Reads and batched writes shared by both databases; subclasses supply transactions."""

    sql: ReadModelSQL
    codec: RowCodec
    # The live view queues receipts in the transaction that books the money; a rebuild's
    # view (another prefix) queues none: what was e-mailed once is not e-mailed again.
    receipts: ReceiptOutbox | None = None
    batch: Batch | None = None
    batches_in_transaction = False  # batch_in: inside another transaction, the append's
    # Account rows and bills as this view's last batch wrote them, for the next batch while
    # they are current (projections/kept.py); set in __init__.
    kept: KeptRows

    def _position_and_tables(self, application_name: str, cursor: Any) -> tuple[int, Any]:
        """The position and the tables' identity (which a rebuild's swap changes)."""
        raise NotImplementedError

    def _read(self) -> Any:  # context manager yielding a cursor
        raise NotImplementedError

    def catching_up(self, application_name: str) -> Any:
        """A context manager a catch-up runs in: one process's at a time where several
        write to the same tables (see PostgresLedgerView). It yields the position read once
        the turn was taken, or None (no turn: the caller reads it)."""
        return nullcontext()

    def _locked_write(self, *, pipelined: bool = False) -> Any:
        """A context manager yielding a cursor that holds the view's write lock, in a
        transaction; ``pipelined``: its statements go in as few round trips as they can."""
        raise NotImplementedError

    def position(self, application_name: str) -> int:
        return self.max_tracking_id(application_name) or 0  # type: ignore[attr-defined]

    def drop_query_indexes(self) -> None:
        """For a replay into this (fresh) set: see ReadModelSQL.query_indexes."""
        with self._locked_write() as cursor:
            for name, _ in self.sql.query_indexes():
                cursor.execute(f"DROP INDEX IF EXISTS {name}")

    def build_query_indexes(self) -> None:
        with self._locked_write() as cursor:
            for _, statement in self.sql.query_indexes():
                cursor.execute(statement)

    @contextmanager
    def batch_at(self, application_name: str, position: int, aggregate_ids: Iterable[UUID]) -> Iterator[Batch]:
        """A batch computed from the rows as they stand at ``position``, outside any lock.

        On leaving, it is written under the view's write lock, in one transaction, only if
        the position has not moved meanwhile (else StalePosition): only batches move the
        position, so an unmoved position means the prefetched rows are still current.
        The lock is held for a position check and a few statements, nothing else.
        Account rows and bills this view's previous batch wrote are reused while they are
        current (projections/kept.py; checked again under the lock, with the tables' identity)."""
        keys = {str(i) for i in aggregate_ids}
        kept = self.kept.take(position)
        rows, bills = kept.take(keys) if kept is not None else ({}, [])
        rows.update(self._accounts_by_aggregate(keys - rows.keys()))
        # The position and the rows are two reads: another process's batch may land
        # between them, and its events would then be applied twice to these rows (seen as
        # "reserved credits went negative" with two server processes). A row carries the
        # position of its last event, so such a row is known at once.
        newer = [row.position for row in rows.values() if row.position > position]
        if newer:
            raise StalePosition(f"rows read at position {max(newer)}, after the batch's {position}")
        try:
            yield self._open(position, rows, bills)
            with self._locked_write(pipelined=not self._batch.staged(self.sql.d)) as cursor:
                now, identity = self._position_and_tables(application_name, cursor)
                if now != position:
                    raise StalePosition(f"position moved from {position} to {now}")
                if kept is not None and identity != kept.identity:
                    raise StalePosition("the read-model tables were replaced")
                self._flush(cursor)
            self.kept.keep(self._kept_after(kept or Kept(position, identity)))
        finally:
            self.batch = None

    def preread(self, application_name: str, aggregate_ids: Iterable[UUID], kept_current: Callable[[int], None],
                bill_numbers: Callable[[dict[str, AccountRow]], set[str]],
                changed_between: Callable[[int, int], AbstractSet[str] | None]) -> Preread:
        """What a batch_in will need, read before the caller's transaction: the position, the
        accounts' rows and the bills ``bill_numbers(rows)`` names (new ones known absent);
        rows and bills this view kept are used where ``kept_current(position)`` left them.
        ``changed_between(since, position)``: the accounts other writers' events changed
        meanwhile, should the position have moved by the time the batch is written."""
        keys = {str(i) for i in aggregate_ids}
        with self._read() as cursor:
            position, identity = self._position_and_tables(application_name, cursor)
        kept_current(position)
        kept = self.kept.take(position)
        if kept is not None and kept.identity != identity:
            kept = None
        return self._rows_for(Preread(position, identity, keys, bill_numbers, changed_between, kept))

    def _rows_for(self, preread: Preread) -> Preread:
        """``preread`` with its rows and bills: the kept ones where it has them, else read."""
        kept = preread.kept
        rows, bills = kept.take(preread.keys) if kept is not None else ({}, [])
        rows.update(self._accounts_by_aggregate(preread.keys - rows.keys()))
        preread.rows = rows
        preread.bills = BillChanges(self.bill, self._pending_bills, self._bills_by_number, bills)
        preread.bills.prefetch(preread.bill_numbers(rows))
        return preread

    @contextmanager
    def batch_in(self, cursor: Any, application_name: str, position: int, preread: Preread) -> Iterator[Batch]:
        """A batch written in a transaction the caller holds (an append's, which has just
        stored the events after ``position``), from rows read before it (``preread``).
        The view's write lock is taken first, if it is free: the caller holds the events
        table's lock, and must not wait for a catch-up's write (or a rebuild's swap) with
        it, which would stop every other append meanwhile. Then the position must be
        ``position`` (else StalePosition, and nothing is written). On leaving, the batch is
        written in that transaction; the rows to keep are ``batch.kept``, for the caller to
        keep once it has committed. A batch large enough for COPY (which a pipeline cannot
        carry) raises TooLarge."""
        locked, now, identity = self._try_lock_in(cursor, application_name)
        if not locked:
            raise StalePosition("another writer holds the read model's write lock")
        if now != position or identity != preread.identity:
            raise StalePosition(f"the read model stands at {now}, not {position}")
        if any(row.position > preread.position for row in preread.rows.values()):
            changed: AbstractSet[str] | None = None  # a batch landed between the two reads
        else:
            changed = frozenset() if now == preread.position else preread.changed_between(preread.position, now)
        if changed is None or not changed.isdisjoint(preread.keys):
            # Another writer's batch changed these rows after they were read: read them
            # again, now that nothing can move them. (Other writers' batches on other
            # accounts land meanwhile as often as not, with two server processes.)
            preread = self._rows_for(Preread(now, identity, preread.keys, preread.bill_numbers,
                                             preread.changed_between, None))
        elif changed and preread.kept is not None:
            preread.kept.forget(changed)  # the other accounts it holds: current at ``now`` too, but for these
        try:
            batch = self._open(position, preread.rows, preread.bills or [])
            yield batch
            if batch.staged(self.sql.d):
                raise TooLarge(f"a batch of {batch.final_position - position} events is written by COPY")
            self._flush(cursor)
            batch.kept = self._kept_after(preread.kept or Kept(position, identity))
        finally:
            self.batch = None

    def _open(self, position: int, rows: dict[str, AccountRow], bills: list[BillRow] | BillChanges) -> Batch:
        if not isinstance(bills, BillChanges):
            bills = BillChanges(self.bill, self._pending_bills, self._bills_by_number, bills)
        self.batch = Batch(position, rows, bills, RowChanges(self._subscription_by_aggregate),
                           RowChanges(self._order_by_aggregate))
        return self.batch

    @property
    def _batch(self) -> Batch:
        if self.batch is None:
            raise InvariantViolation("no batch is open")
        return self.batch

    def _flush(self, cursor: Any) -> None:
        self._batch.flush(self.sql, self.codec, cursor, self._insert_tracking)  # type: ignore[attr-defined]
        if self.receipts is not None and self._batch.receipts:
            self.receipts.enqueue(cursor, self._batch.receipts, datetime.now(timezone.utc))

    def _kept_after(self, kept: Kept) -> Kept:
        kept.put(self._batch.rows(), self._batch.bills.used())
        kept.position = self._batch.final_position
        return kept

    def _try_lock_in(self, cursor: Any, application_name: str) -> tuple[bool, int, Any]:
        """Takes the view's write lock in the caller's transaction if it is free (see
        _locked_write); whether it did, the position and the tables' identity."""
        raise NotImplementedError

    def _accounts_by_aggregate(self, aggregate_ids: Iterable[UUID]) -> dict[str, AccountRow]:
        keys = sorted({str(i) for i in aggregate_ids})
        if not keys:
            return {}
        with self._read() as cursor:
            cursor.execute(self.sql.select_accounts_by_aggregate(len(keys)), self.sql.aggregate_id_params(keys))
            return {row.aggregate_id: row for row in map(self.codec.account, cursor.fetchall())}

    def account(self, account_id: str) -> AccountRow | None:
        with self._read() as cursor:
            cursor.execute(self.sql.select_account(), (account_id,))
            row = cursor.fetchone()
        return None if row is None else self.codec.account(row)

    def transaction(self, transaction_no: str) -> TransactionRow | None:
        statement, params = self.sql._select(self.sql.transactions, "position", 1,
                                             ("transaction_no = ?", transaction_no))
        with self._read() as cursor:
            cursor.execute(statement, params)
            row = cursor.fetchone()
        return None if row is None else self.codec.transaction(row)

    def find_accounts(self, query: AccountFilter, limit: int) -> tuple[list[AccountRow], tuple[str, str] | None]:
        """A page of accounts, and the cursor of the next page (None: the last)."""
        if not 1 <= limit <= MAX_PAGE_ROWS:
            raise ValueError(f"limit must be 1..{MAX_PAGE_ROWS}")
        statement, params = self.sql.select_accounts(query, limit + 1)
        with self._read() as cursor:
            cursor.execute(statement, params)
            rows = [self.codec.account(r) for r in cursor.fetchall()]
        page = rows[:limit]
        more = len(rows) > limit
        return page, ((page[-1].opened_at.isoformat(), page[-1].account_id) if more else None)

    def account_ids(self, after: str | None, limit: int) -> list[str]:
        """Account ids in order, a page at a time (for jobs that visit every account)."""
        statement, params = self.sql._select(self.sql.accounts, "account_id", limit, ("1 = 1", ()),
                                             ("account_id > ?", after))
        with self._read() as cursor:
            cursor.execute(statement, params)
            return [r["account_id"] for r in cursor.fetchall()]

    def transactions(self, query: TransactionFilter, limit: int) -> Page:
        if not 1 <= limit <= MAX_FETCH_ROWS:
            raise ValueError(f"limit must be 1..{MAX_FETCH_ROWS}")
        statement, params = self.sql.select_transactions(query, limit + 1)
        with self._read() as cursor:
            cursor.execute(statement, params)
            rows = [self.codec.transaction(r) for r in cursor.fetchall()]
        page = Page(rows=rows[:limit])
        if len(rows) > limit:
            page.next_before_position = page.rows[-1].position
        return page

    def version_at(self, account_id: str, *, position: int | None = None, time: datetime | None = None) -> int | None:
        """The account's last version at a log position or a moment (None: not opened yet)."""
        if (position is None) == (time is None):
            raise ValueError("give exactly one of position or time")
        with self._read() as cursor:
            if position is not None:
                cursor.execute(self.sql.select_version_at_position(), (account_id, position))
            else:
                cursor.execute(self.sql.select_version_at_time(), (account_id, self.sql.d.time_in(time)))
            row = cursor.fetchone()
        return None if row is None else row["version"]

    def events(self, query: EventFilter, limit: int) -> list[EventRow]:
        if not 1 <= limit <= MAX_FETCH_ROWS:
            raise ValueError(f"limit must be 1..{MAX_FETCH_ROWS}")
        statement, params = self.sql.select_events(query, limit)
        with self._read() as cursor:
            cursor.execute(statement, params)
            return [self.codec.event(r) for r in cursor.fetchall()]

    def holds(self, account_id: str) -> list[HoldRow]:
        with self._read() as cursor:
            cursor.execute(self.sql.select_holds(), (account_id,))
            return [self.codec.hold(r) for r in cursor.fetchall()]

    def due_holds(self, now: datetime, limit: int = MAX_DUE_HOLDS) -> list[HoldRow]:
        with self._read() as cursor:
            cursor.execute(self.sql.select_due_holds(), (self.sql.d.time_in(now), limit))
            return [self.codec.hold(r) for r in cursor.fetchall()]

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        return self.dump_at("")[1]

    # -- bills -------------------------------------------------------------------
    def bill(self, bill_no: str) -> BillRow | None:
        with self._read() as cursor:
            cursor.execute(self.sql.billing.select_one(), (bill_no,))
            row = cursor.fetchone()
        return None if row is None else BillCodec(self.sql.d).row(row)

    def _bills_by_number(self, bill_numbers: list[str]) -> list[BillRow]:
        if not bill_numbers:
            return []
        params = (bill_numbers,) if self.sql.d is POSTGRES else tuple(bill_numbers)
        with self._read() as cursor:
            cursor.execute(self.sql.billing.select_many(len(bill_numbers)), params)
            return [BillCodec(self.sql.d).row(r) for r in cursor.fetchall()]

    def _pending_bills(self, account_id: str) -> list[BillRow]:
        with self._read() as cursor:
            cursor.execute(self.sql.billing.select_pending(), (account_id,))
            return [BillCodec(self.sql.d).row(r) for r in cursor.fetchall()]

    def bills(self, query: BillFilter, limit: int, oldest_first: bool = False) -> tuple[list[BillRow], int | None]:
        """A page of bills (newest first unless ``oldest_first``) and the next page's cursor."""
        if not 1 <= limit <= MAX_FETCH_ROWS:
            raise ValueError(f"limit must be 1..{MAX_FETCH_ROWS}")
        conditions = self.sql.billing.conditions(query)
        if oldest_first and query.before_position is not None:  # the cursor reads the other way
            conditions = [c for c in conditions if not c[0].startswith("created_position")]
            conditions.append(("created_position > ?", query.before_position))
        order = "created_position" + ("" if oldest_first else " DESC")
        return self._page(self.sql.billing.bills, order, limit, conditions, BillCodec(self.sql.d).row)

    # -- subscriptions -------------------------------------------------------------
    def subscription(self, subscription_id: str) -> SubscriptionRow | None:
        return self._one(self.sql.subscribing.select_one(), subscription_id, SubscriptionCodec(self.sql.d).row)

    def _subscription_by_aggregate(self, aggregate_id: str) -> SubscriptionRow | None:
        return self._one(self.sql.subscribing.select_by_aggregate(), aggregate_id, SubscriptionCodec(self.sql.d).row)

    def subscriptions(self, query: SubscriptionFilter, limit: int) -> tuple[list[SubscriptionRow], int | None]:
        """A page of subscriptions, newest first, deleted ones left out, and the next page's cursor."""
        return self._searched_page(self.sql.subscribing.subscriptions, self.sql.subscribing.conditions, query, limit,
                                   SubscriptionCodec(self.sql.d).row)

    # -- orders --------------------------------------------------------------------
    def order(self, order_id: str) -> OrderRow | None:
        return self._one(self.sql.ordering.select_by("order_id"), order_id, OrderCodec(self.sql.d).row)

    def _order_by_aggregate(self, aggregate_id: str) -> OrderRow | None:
        return self._one(self.sql.ordering.select_by("aggregate_id"), aggregate_id, OrderCodec(self.sql.d).row)

    def orders(self, query: OrderFilter, limit: int) -> tuple[list[OrderRow], int | None]:
        """A page of orders, newest first, and the next page's cursor."""
        return self._searched_page(self.sql.ordering.orders, self.sql.ordering.conditions, query, limit,
                                   OrderCodec(self.sql.d).row)

    def _searched_page(self, table: str, conditions: Any, query: Any, limit: int,
                       decode: Any) -> tuple[list[Any], int | None]:
        """A page, newest first, of a table whose filter has a ``text`` searched with LIKE."""
        if not 1 <= limit <= MAX_FETCH_ROWS:
            raise ValueError(f"limit must be 1..{MAX_FETCH_ROWS}")
        pattern = contains_pattern(query.text) if query.text else None
        return self._page(table, "created_position DESC", limit, conditions(query, pattern), decode)

    def _one(self, statement: str, key: str, decode: Any) -> Any:
        with self._read() as cursor:
            cursor.execute(statement, (key,))
            row = cursor.fetchone()
        return None if row is None else decode(row)

    # -- invoices ----------------------------------------------------------------
    def invoice(self, invoice_id_or_number: str) -> InvoiceRow | None:
        with self._read() as cursor:
            cursor.execute(self.sql.invoicing.select_invoice(), (invoice_id_or_number, invoice_id_or_number))
            row = cursor.fetchone()
        return None if row is None else InvoiceCodec(self.sql.d).invoice(row)

    def invoice_lines(self, invoice_id: str) -> list[InvoiceLineRow]:
        with self._read() as cursor:
            cursor.execute(self.sql.invoicing.select_lines(), (invoice_id,))
            return [InvoiceCodec(self.sql.d).line(r) for r in cursor.fetchall()]

    def invoice_payments(self, invoice_id: str) -> list[PaymentRow]:
        codec = InvoiceCodec(self.sql.d)
        with self._read() as cursor:
            cursor.execute(self.sql.invoicing.select_payments_of(), (invoice_id,))
            return [codec.payment(r) for r in cursor.fetchall()]

    def invoices(self, query: InvoiceFilter, limit: int) -> tuple[list[InvoiceRow], int | None]:
        """A page of invoices, newest first, and the cursor of the next page (None: last)."""
        if not 1 <= limit <= MAX_FETCH_ROWS:
            raise ValueError(f"limit must be 1..{MAX_FETCH_ROWS}")
        inv = self.sql.invoicing
        return self._page(inv.invoices, "created_position DESC", limit, inv.invoice_conditions(query),
                          InvoiceCodec(self.sql.d).invoice)

    def _page(self, table: str, order: str, limit: int, conditions: list[tuple[str, Any]],
              decode: Any) -> tuple[list[Any], int | None]:
        """Up to ``limit`` rows and the cursor (created_position) of the next page, if any."""
        statement, params = self.sql._select(table, order, limit + 1, *conditions)
        with self._read() as cursor:
            cursor.execute(statement, params)
            rows = [decode(r) for r in cursor.fetchall()]
        more = len(rows) > limit
        return rows[:limit], (rows[limit - 1].created_position if more else None)

    def invoice_dashboard(self, query: InvoiceFilter) -> list[dict[str, Any]]:
        """Counts and sums per currency, status and payment status of the invoices the filter picks."""
        inv, d = self.sql.invoicing, self.sql.d
        statement, params = self.sql._select(inv.invoices, "1", 1, *inv.invoice_conditions(query))
        where = statement.split(" WHERE ", 1)[1].rsplit(" ORDER BY ", 1)[0]
        groups: dict[tuple[str, str, str], dict[str, Any]] = {}
        with self._read() as cursor:
            # SQLite would sum text amounts as floats: there the exact sums are made here.
            cursor.execute(inv.dashboard(where) if not d.text_amounts else inv.dashboard_rows(where), params[:-1])
            for r in cursor.fetchall():
                group = groups.setdefault((r["currency"], r["status"], r["payment_status"]), {
                    "currency": r["currency"], "status": r["status"], "payment_status": r["payment_status"],
                    "invoices": 0, "total": Decimal(0), "paid": Decimal(0), "outstanding": Decimal(0)})
                group["invoices"] += r["invoices"]
                for column in ("total", "paid", "outstanding"):
                    group[column] += d.amount_out(r[column])
        return [groups[key] for key in sorted(groups)]

    def payment(self, position: int) -> PaymentRow | None:
        return self._one_payment(("position = ?", position))

    def payment_by_id(self, account_id: str, payment_id: str) -> PaymentRow | None:
        return self._one_payment(("account_id = ?", account_id), ("payment_id = ?", payment_id))

    def _one_payment(self, *conditions: tuple[str, Any]) -> PaymentRow | None:
        inv = self.sql.invoicing
        statement, params = self.sql._select(inv.payments, "position", 1, *conditions)
        with self._read() as cursor:
            cursor.execute(statement, params)
            row = cursor.fetchone()
        return None if row is None else InvoiceCodec(self.sql.d).payment(row)

    def payments(self, account_id: str | None, limit: int, before_position: int | None = None) -> list[PaymentRow]:
        if not 1 <= limit <= MAX_FETCH_ROWS:
            raise ValueError(f"limit must be 1..{MAX_FETCH_ROWS}")
        inv = self.sql.invoicing
        statement, params = self.sql._select(inv.payments, "position DESC", limit, ("1 = 1", ()),
                                             ("account_id = ?", account_id), ("position < ?", before_position))
        with self._read() as cursor:
            cursor.execute(statement, params)
            return [InvoiceCodec(self.sql.d).payment(r) for r in cursor.fetchall()]

    @contextmanager
    def reading_at(self, application_name: str) -> Iterator[tuple[int, Callable[[str], Iterator[dict[str, Any]]]]]:
        """The position, and each table's rows in the order of its key, as they stood at it
        (``rows(table)``, one table at a time). Here read whole, as dump_at does (SQLite: an
        embedded ledger); PostgreSQL reads them a page at a time."""
        position, tables = self.dump_at(application_name)

        def rows(table: str) -> Iterator[dict[str, Any]]:
            yield from tables[table]

        yield position, rows

    def dump_at(self, application_name: str) -> tuple[int, dict[str, list[dict[str, Any]]]]:
        """Every row of every table, and the position they stand at, read in one transaction."""
        tables: dict[str, list[dict[str, Any]]] = {}
        with self.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]  # one snapshot
            for name, statement in self.sql.dump():
                cursor.execute(statement)
                tables[name] = [dict(r) for r in cursor.fetchall()]
            position = self._max_tracking_id(application_name, cursor) or 0  # type: ignore[attr-defined]
        return position, tables


class PostgresLedgerView(LedgerViewQueries, PostgresTrackingRecorder):
    turn_wait_ms = 5_000  # the longest a catch-up waits for its turn (catching_up)
    batches_in_transaction = True

    def __init__(self, datastore: PostgresDatastore, *, prefix: str = DEFAULT_PREFIX) -> None:
        super().__init__(datastore, tracking_table_name=f"{prefix}_tracking")
        self.sql = ReadModelSQL(POSTGRES, prefix, datastore.schema)
        self.codec = RowCodec(POSTGRES)
        self.kept = KeptRows()
        self.sql_create_statements.extend(SQL(statement) for statement in self.sql.ddl())
        self.prefix = prefix
        self._lock_key = f"{datastore.schema}.{prefix}"
        self._catch_up_key = f"{self._lock_key}.catch_up"
        self._try_turn_sql = SQL("SELECT pg_try_advisory_lock(hashtextextended(%s, 0)) AS turn, ({0}) AS max").format(
            self.max_tracking_id_statement)
        self._position_and_tables_sql = SQL("SELECT ({0}) AS max, to_regclass(%s)::oid AS id").format(
            self.max_tracking_id_statement)
        self._try_lock_sql = SQL("SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0)) AS locked, "
                                 "({0}) AS max, to_regclass(%s)::oid AS id").format(self.max_tracking_id_statement)
        # The library's upsert of the position returns a row, which it fetches to see that
        # the position moved forward: a round trip of its own in every batch, where the
        # position was checked under the write lock already. Here a position that does not
        # move forward fails the statement itself (division by zero), at the commit's sync.
        self._insert_tracking_sql = SQL(
            "WITH moved AS ({0}) SELECT 1 / (SELECT COUNT(*) FROM moved)::int").format(self.insert_tracking_statement)

    def _table(self, prefix: str, name: str) -> str:
        return f'"{self.datastore.schema}"."{prefix}_{name}"'

    def _position_and_tables(self, application_name: str, cursor: Any) -> tuple[int, Any]:
        cursor.execute(self._position_and_tables_sql, (application_name, self.sql.accounts), prepare=True)
        row = cursor.fetchone()
        return row["max"] or 0, row["id"]

    def replace_with(self, fresh: PostgresLedgerView) -> None:
        """Puts ``fresh``'s tables (and their indexes) under this view's names, in one
        transaction holding this view's write lock: readers see the old set or the new."""
        with self._locked_write() as cursor:
            cursor.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = ANY(%s)",
                           (self.datastore.schema, [f"{fresh.prefix}_{t}" for t in TABLES]))
            indexes = [row["indexname"] for row in cursor.fetchall()]
            for name in TABLES:
                cursor.execute(f"DROP TABLE IF EXISTS {self._table(self.prefix, name)}")
                cursor.execute(f'ALTER TABLE {self._table(fresh.prefix, name)} RENAME TO "{self.prefix}_{name}"')
            for index in indexes:
                renamed = self.prefix + index[len(fresh.prefix):]
                cursor.execute(f'ALTER INDEX "{self.datastore.schema}"."{index}" RENAME TO "{renamed}"')

    def drop(self) -> None:
        with self._locked_write() as cursor:
            for name in TABLES:
                cursor.execute(f"DROP TABLE IF EXISTS {self._table(self.prefix, name)}")

    def build_query_indexes(self) -> None:
        """Each on a connection of its own, at once: builds of one table's indexes do not
        block each other, and each is mostly one sort (about 1 s one after the other for
        370,000 events, on two cores)."""
        statements = [statement for _, statement in self.sql.query_indexes()]
        with ThreadPoolExecutor(min(len(statements), self.datastore.pool.max_size)) as builders:
            for built in [builders.submit(self._execute_alone, statement) for statement in statements]:
                built.result()

    def _execute_alone(self, statement: str) -> None:
        with self.datastore.get_connection() as conn, conn.transaction():
            conn.execute(NO_STATEMENT_TIMEOUT)  # a build reads the whole table
            conn.execute(statement)

    @contextmanager
    def reading_at(self, application_name: str) -> Iterator[tuple[int, Callable[[str], Iterator[dict[str, Any]]]]]:
        """As LedgerViewQueries.reading_at, in bounded memory: a server-side cursor reads each
        table DUMP_PAGE_ROWS at a time, all in one snapshot (a REPEATABLE READ transaction;
        under READ COMMITTED each statement would see later batches). Verify holds 1.5 GB
        for 370,000 events when read whole."""
        if self.datastore.pool.max_size < 2:  # the other side's reader needs a connection too
            with super().reading_at(application_name) as read:
                yield read
            return
        statements = dict(self.sql.dump())
        with self.datastore.get_connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            conn.execute(NO_STATEMENT_TIMEOUT)  # a table keyed by text is sorted whole before its first page
            with conn.cursor() as cursor:
                position = self._max_tracking_id(application_name, cursor) or 0

            def rows(table: str) -> Iterator[dict[str, Any]]:
                with conn.cursor(name=f"rows_of_{table}") as cursor:
                    cursor.itersize = DUMP_PAGE_ROWS
                    cursor.execute(statements[table])
                    yield from cursor

            yield position, rows

    def join_shares(self, application_name: str, share_names: Sequence[str], position: int) -> None:
        """After a replay split between processes (projections/shares.py): once every share
        stands at ``position``, the set's one position is that, and the shares' are gone."""
        with self._locked_write() as cursor:
            for name in share_names:
                at, _ = self._position_and_tables(name, cursor)
                if at != position:
                    raise InvariantViolation(f"share {name} of the replay stopped at {at}, not {position}")
            cursor.execute(SQL("DELETE FROM {0} WHERE application_name = ANY(%s)").format(
                Identifier(self.datastore.schema, self.tracking_table_name)), (list(share_names),))
            if position:
                self._insert_tracking(cursor, Tracking(application_name, position))

    @contextmanager
    def _read(self) -> Iterator[Any]:
        # Pooled connections are in autocommit mode: a one-statement read is one round trip.
        with self.datastore.cursor() as cursor:
            yield cursor

    @contextmanager
    def catching_up(self, application_name: str) -> Iterator[int | None]:
        """Batches are computed outside the write lock and land only if the position has not
        moved (batch_at). With several processes catching up at once, all but one computed
        for nothing and started again: with four Kafka consumers, about two computations in
        three were thrown away (py-spy), and each event cost twice the CPU of two consumers.
        Here they take turns instead; the next in turn mostly finds its events applied, or
        applies its own without reading them back. The lock is a session lock on a
        connection of its own (the batch reads and writes on others), so the pool must
        hold two: with one, the turns are left to the optimistic check alone. So are they
        after ``turn_wait_ms``: a process stuck in its turn never stops the others."""
        if self.datastore.pool.max_size < 2:
            yield None
            return
        with self.datastore.get_connection() as conn:
            # A free turn and the position in one statement. Its snapshot may predate the
            # last holder's commit: then the batch's check under the write lock finds the
            # position moved and it is computed again, as without turns.
            row = conn.execute(self._try_turn_sql, (self._catch_up_key, application_name), prepare=True).fetchone()
            if row["turn"]:
                position_now: int | None = row["max"] or 0
            else:
                try:
                    with conn.pipeline(), conn.transaction():  # one round trip; a session lock outlives it
                        conn.execute(SQL("SET LOCAL lock_timeout = {}").format(f"{self.turn_wait_ms}ms"))
                        conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (self._catch_up_key,))
                        # Read once the lock is held (each statement sees what was committed before it).
                        read = conn.execute(self.max_tracking_id_statement, (application_name,), prepare=True)
                    position_now = read.fetchone()["max"] or 0
                except psycopg.errors.LockNotAvailable:
                    yield None  # waited long enough: compute alongside, as without turns
                    return
            try:
                yield position_now
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (self._catch_up_key,))

    @contextmanager
    def _locked_write(self, *, pipelined: bool = False) -> Iterator[Any]:
        # A batch of one usage made about ten round trips here; in a pipeline, two or three
        # (reads that need their answer, e.g. the position, still wait for it).
        with self.datastore.get_connection() as conn:
            with conn.pipeline() if pipelined else nullcontext(), conn.transaction(), conn.cursor() as cursor:
                self._lock_in(cursor)
                yield cursor

    def _insert_tracking(self, cursor: Any, tracking: Tracking) -> None:
        if not self.datastore.single_row_tracking:  # its statement returns nothing to count
            super()._insert_tracking(cursor, tracking)
            return
        cursor.execute(self._insert_tracking_sql, {"application_name": tracking.application_name,
                                                   "notification_id": tracking.notification_id}, prepare=True)

    def _lock_in(self, cursor: Any) -> None:
        # One writer per set of tables at a time; others wait here, then see the moved position.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (self._lock_key,), prepare=True)

    def _try_lock_in(self, cursor: Any, application_name: str) -> tuple[bool, int, Any]:
        # One statement: its snapshot may predate the lock, but a batch committed in between
        # moved the position from below the caller's (ours are not visible to it), so the
        # caller's check of the position refuses it.
        cursor.execute(self._try_lock_sql, (self._lock_key, application_name, self.sql.accounts), prepare=True)
        row = cursor.fetchone()
        return row["locked"], row["max"] or 0, row["id"]



class SQLiteLedgerView(LedgerViewQueries, SQLiteTrackingRecorder):
    def __init__(self, datastore: SQLiteDatastore, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.sql = ReadModelSQL(SQLITE, prefix, None)
        self.codec = RowCodec(SQLITE)
        self.kept = KeptRows()
        self.prefix = prefix
        self._tracking_table = f"{prefix}_tracking"
        super().__init__(datastore)
        # The library's SQLite recorder names its table "tracking" outright; each set of
        # read-model tables (live, rebuild) needs its own, as on PostgreSQL.
        self.insert_tracking_statement = self._own_table(self.insert_tracking_statement)
        self.select_max_tracking_id_statement = self._own_table(self.select_max_tracking_id_statement)

    def _position_and_tables(self, application_name: str, cursor: Any) -> tuple[int, Any]:
        position = self._max_tracking_id(application_name, cursor) or 0
        cursor.execute("SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = ?", (self.sql.accounts,))
        row = cursor.fetchone()
        return position, row["rootpage"] if row else None

    def _own_table(self, statement: str) -> str:
        renamed = re.sub(r"\btracking\b(?=[ .(])", self._tracking_table, statement)
        assert renamed != statement, statement
        return renamed

    def construct_create_table_statements(self) -> list[str]:
        library = super().construct_create_table_statements()
        return [*library[:-1], self._own_table(library[-1]), *self.sql.ddl()]

    @contextmanager
    def _read(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=False) as cursor:
            yield cursor

    @contextmanager
    def _locked_write(self, *, pipelined: bool = False) -> Iterator[Any]:
        with sqlite_write_transaction(self.datastore) as cursor:  # in process: no round trips to save
            yield cursor

    def replace_with(self, fresh: SQLiteLedgerView) -> None:
        """Puts ``fresh``'s tables under this view's names in one write transaction. SQLite
        cannot rename an index: the fresh set's indexes are dropped and made again."""
        fresh_tables = [f"{fresh.prefix}_{t}" for t in TABLES]
        with self._locked_write() as cursor:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN "
                           f"({', '.join('?' for _ in fresh_tables)})", tuple(fresh_tables))
            for index in [row["name"] for row in cursor.fetchall()]:
                cursor.execute(f'DROP INDEX "{index}"')
            for name in TABLES:
                cursor.execute(f'DROP TABLE IF EXISTS "{self.prefix}_{name}"')
                cursor.execute(f'ALTER TABLE "{fresh.prefix}_{name}" RENAME TO "{self.prefix}_{name}"')
            for statement in self.sql.ddl():
                if statement.startswith("CREATE INDEX"):
                    cursor.execute(statement)

    def drop(self) -> None:
        with self._locked_write() as cursor:
            for name in TABLES:
                cursor.execute(f'DROP TABLE IF EXISTS "{self.prefix}_{name}"')
