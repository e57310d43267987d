"""A read model's batch: the changes of many events, computed in memory from the rows as
they stood at a position, then written in one transaction with the tracking record of
the last event applied, only if no other writer moved the position first (so each event
is applied exactly once).

Written in its own transaction (``batch_at``, a catch-up), or in an append's, once the
events it follows from have their positions (``preread`` before it, ``batch_in`` in it).
The views (views.py) mix this in and supply the reads, the locks and the SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking

from ledger_core.errors import InvariantViolation
from persistence.dialect import Dialect
from persistence.receipt_outbox import NewReceipt, ReceiptOutbox
from projections import bulk
from projections.bills import BILL_COLUMNS, BillChanges, BillCodec, BillRow
from projections.bulk import upsert_rows
from projections.invoice_sql import InvoiceChanges, InvoiceCodec
from projections.kept import Kept, KeptRows
from projections.orders import OrderCodec, OrderRow
from projections.row_changes import RowChanges
from projections.row_sql import (
    ACCOUNT_COLUMNS,
    APPENDED_TYPES,
    EVENT_COLUMNS,
    HOLD_COLUMNS,
    TRANSACTION_COLUMNS,
    ReadModelSQL,
    RowCodec,
)
from projections.rows import AccountRow, EventRow, HoldRow, TransactionRow
from projections.subscriptions import SubscriptionCodec, SubscriptionRow


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
    # The bills the batch adds to, given the rows and the memo of bill numbers the batch will use
    bill_numbers: Callable[[dict[str, AccountRow], dict[tuple[Any, ...], str]], set[str]]
    changed_between: Callable[[int, int], AbstractSet[str] | None]  # accounts changed from one position to another
    kept: Kept | None  # the view's kept rows it was read with, to keep again once written
    rows: dict[str, AccountRow] = field(default_factory=dict)
    bills: BillChanges | None = None


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


class BatchWriting:
    """Writing batches, for a view (views.py LedgerViewQueries), which supplies its reads
    (``_read``, ``_accounts_by_aggregate``, the bills', subscriptions' and orders' rows),
    its locks (``_locked_write``, ``_try_lock_in``) and its position."""

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
    bill: Callable[[str], BillRow | None]
    _pending_bills: Callable[[str], list[BillRow]]
    _bills_by_number: Callable[[list[str]], list[BillRow]]
    _subscription_by_aggregate: Callable[[str], SubscriptionRow | None]
    _order_by_aggregate: Callable[[str], OrderRow | None]
    _accounts_by_aggregate: Callable[[Iterable[UUID]], dict[str, AccountRow]]

    def _position_and_tables(self, application_name: str, cursor: Any) -> tuple[int, Any]:
        """The position and the tables' identity (which a rebuild's swap changes)."""
        raise NotImplementedError

    def _read(self) -> Any:  # context manager yielding a cursor
        raise NotImplementedError

    def _locked_write(self, *, pipelined: bool = False) -> Any:
        """A context manager yielding a cursor that holds the view's write lock, in a
        transaction; ``pipelined``: its statements go in as few round trips as they can."""
        raise NotImplementedError

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
                bill_numbers: Callable[[dict[str, AccountRow], dict[tuple[Any, ...], str]], set[str]],
                changed_between: Callable[[int, int], AbstractSet[str] | None]) -> Preread:
        """What a batch_in will need, read before the caller's transaction: the position, the
        accounts' rows and the bills ``bill_numbers(rows, memo)`` names (new ones known absent);
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
        preread.bills.prefetch(preread.bill_numbers(rows, preread.bills.numbers))
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
