"""The read models' views, for PostgreSQL and SQLite: their queries, their transactions
and locks, and replacing one set of tables with another.

Each view is a library ``TrackingRecorder``: its tables live in the same database as
the events, and every batch of read-model changes (batches.py) is written in one
transaction with the tracking record of the last event it applied. The statements of
the tables are in row_sql.py and beside each table's rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder
from psycopg.sql import SQL, Identifier

from ledger_core.errors import InvariantViolation
from persistence.database import NO_STATEMENT_TIMEOUT, sqlite_write_transaction
from persistence.dialect import POSTGRES, SQLITE
from projections.batches import BatchWriting
from projections.bills import BillCodec, BillFilter, BillRow
from projections.invoice_sql import INVOICE_TABLES, InvoiceCodec
from projections.kept import KeptRows
from projections.orders import OrderCodec, OrderFilter, OrderRow
from projections.row_sql import ReadModelSQL, RowCodec, contains_pattern
from projections.rows import (
    AccountFilter,
    AccountRow,
    EventFilter,
    EventRow,
    HoldRow,
    InvoiceFilter,
    InvoiceLineRow,
    InvoiceRow,
    Page,
    PaymentRow,
    TransactionFilter,
    TransactionRow,
)
from projections.subscriptions import (
    SubscriptionCodec,
    SubscriptionFilter,
    SubscriptionRow,
)

DEFAULT_PREFIX = "rm"
# One set of tables; "tracking" is the library's.
TABLES = ("accounts", "transactions", "holds", "events", *INVOICE_TABLES, "bills", "subscriptions", "orders",
          "tracking")
MAX_PAGE_ROWS = 500
MAX_FETCH_ROWS = MAX_PAGE_ROWS + 1  # a full page and one row more, which tells whether another page follows
MAX_DUE_HOLDS = 1_000
DUMP_PAGE_ROWS = 2_000  # rows a comparison of read models holds per table and side at once


class LedgerViewQueries(BatchWriting):
    """Reads and batched writes shared by both databases; subclasses supply transactions."""

    def catching_up(self, application_name: str) -> Any:
        """A context manager a catch-up runs in: one process's at a time where several
        write to the same tables (see PostgresLedgerView). It yields the position read once
        the turn was taken, or None (no turn: the caller reads it)."""
        return nullcontext()

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
