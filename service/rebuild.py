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
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from contextlib import contextmanager
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
    name = service.commands.name
    target = service.projector.catch_up()
    scratch, replayed = _replay_into(service, VERIFY_PREFIX, target, progress, processes)
    try:
        for _ in range(MAX_VERIFY_ROUNDS):
            position, live = service.view.dump_at(name)
            if position == scratch.position(name):
                return diff(live, scratch.dump()), replayed
            Projector(service.commands, scratch).catch_up(stop=position)  # the live side moved on
        raise RuntimeError("the live read model kept moving; verify when writes are quieter")
    finally:
        scratch.drop()


def diff(live: dict[str, list[dict[str, Any]]], rebuilt: dict[str, list[dict[str, Any]]]) -> list[Difference]:
    unkeyed = (live.keys() | rebuilt.keys()) - KEYS.keys()
    if unkeyed:
        raise InvariantViolation(f"no key columns for the read model's tables {sorted(unkeyed)}: verify would skip them")
    differences = []
    for table, key_columns in KEYS.items():
        by_key = {tuple(r[c] for c in key_columns): r for r in rebuilt.get(table, [])}
        for row in live.get(table, []):
            key = tuple(row[c] for c in key_columns)
            expected = by_key.pop(key, None)
            if expected != row:
                differences.append(Difference(table, key, row, expected))
        differences.extend(Difference(table, key, None, row) for key, row in by_key.items())
    return differences
