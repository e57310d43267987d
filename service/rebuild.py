"""Rebuilding the read models from event 1, and checking the live ones against a rebuild.

Rebuild: fresh tables are filled from the first event, then swapped in under the live
names in one transaction (readers see the old set or the new, never a mix), and the
events written meanwhile are applied by the ordinary catch-up.

Verify: scratch tables are filled up to exactly the live position, then both sets are
compared row by row; every difference is reported. Nothing live is changed.

Both can split the replay between processes on PostgreSQL (``processes``): each applies
its share of the accounts (projections/shares.py: ranges of the accounts' keys holding
equal parts of the events) up to one stopping position fixed before they start, then the
set takes that position. Either way the indexes only queries use are built at the end.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from typing import Any

from ledger_core.errors import InvariantViolation
from persistence.log_shares import count_up_to, events_per_aggregate
from projections.catchup import Projector
from projections.shares import ACCOUNT_TOPICS, MAX_SHARES, Share, plan
from service.ledger_service import LedgerService, make_view
from service.settings import Settings

REBUILD_PREFIX = "rm_rebuild"
VERIFY_PREFIX = "rm_verify"
REPLAY_BATCH_EVENTS = 10_000  # the most a batch may hold: fewer, bigger transactions when replaying
MAX_VERIFY_ROUNDS = 10  # the live position may move while it is read; retries are bounded
DEFAULT_MAX_PROCESSES = 4  # past about one per core, shares only wait for each other and for PostgreSQL
PROGRESS_EVERY_S = 0.5  # how often a split replay reports its slowest share's position
# Every table of the read model, by its key columns: verify compares them all.
KEYS = {"accounts": ("account_id",), "transactions": ("position",), "holds": ("account_id", "reservation_id"),
        "events": ("position",), "invoices": ("invoice_id",), "invoice_lines": ("invoice_id", "line_no"),
        "payments": ("position",), "payment_allocations": ("invoice_id", "position"), "bills": ("bill_no",),
        "subscriptions": ("subscription_id",), "orders": ("order_id",)}

Progress = Callable[[int, int], None]
Rows = Callable[[str], Generator[dict[str, Any], None, None]]  # a table's rows in key order
MAX_DIFFERENCES = 10_000


@dataclass(frozen=True)
class Replayed:
    events: int
    seconds: float
    position: int

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Difference:
    table: str
    key: tuple[Any, ...]
    live: dict[str, Any] | None  # None: the row is missing from the live read model
    rebuilt: dict[str, Any] | None  # None: the live row should not exist

    def __str__(self) -> str:
        if self.live is None:
            return f"{self.table} {self.key}: missing from the live read model"
        if self.rebuilt is None:
            return f"{self.table} {self.key}: in the live read model but not in the events"
        columns = sorted(c for c in self.live if self.live[c] != self.rebuilt.get(c))
        changes = ", ".join(f"{c} live={self.live[c]!r} rebuilt={self.rebuilt.get(c)!r}" for c in columns)
        return f"{self.table} {self.key}: {changes}"


def default_processes(service: LedgerService) -> int:
    """One per core, at most DEFAULT_MAX_PROCESSES, on PostgreSQL; SQLite writes one at a time."""
    if not service.settings.database.is_postgres:
        return 1
    return max(1, min(os.cpu_count() or 1, DEFAULT_MAX_PROCESSES))


def _replay_into(service: LedgerService, prefix: str, stop: int | None, progress: Progress | None,
                 processes: int = 1) -> tuple[Any, Replayed]:
    if not 1 <= processes <= MAX_SHARES:
        raise ValueError(f"processes must be 1..{MAX_SHARES}")
    if processes > 1 and not service.settings.database.is_postgres:
        raise ValueError("a replay split between processes needs PostgreSQL (SQLite has one writer at a time)")
    scratch = make_view(service.commands, prefix=prefix, create_tables=False)
    scratch.drop()  # type: ignore[attr-defined]  # leftovers of an interrupted run
    scratch.create_table()  # type: ignore[attr-defined]
    scratch.drop_query_indexes()  # built once at the end
    if processes > 1:
        replayed = _replay_split(service, scratch, prefix, stop, processes, progress)
    else:
        replayed = _replay_alone(service, scratch, stop, progress)
    started = time.perf_counter()
    scratch.build_query_indexes()
    return scratch, replace(replayed, seconds=replayed.seconds + time.perf_counter() - started)


def _replay_alone(service: LedgerService, scratch: Any, stop: int | None, progress: Progress | None) -> Replayed:
    applied = 0

    def counted(position: int, events: int) -> None:
        nonlocal applied
        applied += events
        if progress:
            progress(position, events)

    started = time.perf_counter()
    with _cyclic_gc_paused():
        position = Projector(service.commands, scratch, REPLAY_BATCH_EVENTS).catch_up(stop=stop, progress=counted)
    return Replayed(applied, time.perf_counter() - started, position)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """A replay makes millions of short-lived objects and no reference cycles; the cyclic
    collector's passes over them cost about 10% (measured). Memory stays bounded by the
    batch size, and reference counting still frees everything."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _replay_split(service: LedgerService, scratch: Any, prefix: str, stop: int | None, processes: int,
                  progress: Progress | None) -> Replayed:
    ledger = service.commands
    started = time.perf_counter()
    end = (ledger.recorder.max_notification_id() or 0) if stop is None else stop
    shares = plan(events_per_aggregate(ledger, ACCOUNT_TOPICS), processes)
    names = [ledger.name + share.name_suffix for share in shares]
    # Spawned, not forked: a fork would share the parent's pooled connections. A process
    # that dies breaks the pool (an error here), never a wait without end.
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_replay_share, service.settings, prefix, end, share) for share in shares]
        reported = 0
        while True:
            _, running = wait(futures, timeout=PROGRESS_EVERY_S, return_when=FIRST_EXCEPTION)
            if progress is not None:
                slowest = min(scratch.position(name) for name in names)
                if slowest > reported:
                    progress(slowest, slowest - reported)
                    reported = slowest
            if not running or any(f.done() and f.exception() for f in futures):
                break
        for future in futures:
            future.result()  # a failed share's error, once the others have stopped
    scratch.join_shares(ledger.name, names, end)
    return Replayed(count_up_to(ledger, end), time.perf_counter() - started, end)


def _replay_share(settings: Settings, prefix: str, stop: int, share: Share) -> None:
    """One process's share of a split replay, up to ``stop``."""
    service = LedgerService(replace(settings, create_tables=False))
    try:
        scratch = make_view(service.commands, prefix=prefix, create_tables=False)
        with _cyclic_gc_paused():
            Projector(service.commands, scratch, REPLAY_BATCH_EVENTS, share).replay_share(stop)
    finally:
        service.close()


def rebuild(service: LedgerService, progress: Progress | None = None, processes: int = 1) -> Replayed:
    fresh, replayed = _replay_into(service, REBUILD_PREFIX, None, progress, processes)
    service.view.replace_with(fresh)  # type: ignore[attr-defined]
    service.projector.catch_up()  # what was written during the rebuild
    return replayed


def verify(service: LedgerService, progress: Progress | None = None,
           processes: int = 1) -> tuple[list[Difference], Replayed]:
    """The rows in which the live read model and a replay of the log differ (at most
    MAX_DIFFERENCES: past that the read model is broken anyway)."""
    name = service.commands.name
    target = service.projector.catch_up()
    scratch, replayed = _replay_into(service, VERIFY_PREFIX, target, progress, processes)
    try:
        for _ in range(MAX_VERIFY_ROUNDS):
            with service.view.reading_at(name) as (position, live):  # type: ignore[attr-defined]
                if position == scratch.position(name):
                    with scratch.reading_at(name) as (_, rebuilt):
                        return diff(live, rebuilt), replayed
            Projector(service.commands, scratch).catch_up(stop=position)  # the live side moved on
        raise RuntimeError("the live read model kept moving; verify when writes are quieter")
    finally:
        scratch.drop()


def diff(live: Rows, rebuilt: Rows) -> list[Difference]:
    """Table by table, both sides' rows in key order are walked side by side: the memory
    held is a page of each, whatever the size of the read model."""
    differences: list[Difference] = []
    for table, key_columns in KEYS.items():
        # Closed here, not when collected: a reader's cursor belongs to its open transaction.
        with closing(live(table)) as live_rows, closing(rebuilt(table)) as rebuilt_rows:
            for difference in _table_differences(table, key_columns, live_rows, rebuilt_rows):
                differences.append(difference)
                if len(differences) >= MAX_DIFFERENCES:
                    return differences
    return differences


def _table_differences(table: str, key_columns: tuple[str, ...], live: Iterator[dict[str, Any]],
                       rebuilt: Iterator[dict[str, Any]]) -> Iterator[Difference]:
    a, b = _keyed(table, key_columns, live), _keyed(table, key_columns, rebuilt)
    x, y = next(a, None), next(b, None)
    while x is not None or y is not None:
        if y is None or (x is not None and x[0] < y[0]):
            yield Difference(table, x[0], x[1], None)  # type: ignore[index]
            x = next(a, None)
        elif x is None or y[0] < x[0]:
            yield Difference(table, y[0], None, y[1])
            y = next(b, None)
        else:
            if x[1] != y[1]:
                yield Difference(table, x[0], x[1], y[1])
            x, y = next(a, None), next(b, None)


def _keyed(table: str, key_columns: tuple[str, ...], rows: Iterator[dict[str, Any]]) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    last = None
    for row in rows:
        key = tuple(row[c] for c in key_columns)
        if last is not None and not last < key:
            raise InvariantViolation(f"{table} rows are not in key order ({last} then {key}): the comparison would be wrong")
        last = key
        yield key, row
