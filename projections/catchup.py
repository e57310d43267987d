"""Catching a read model up with the event log, in batches, exactly once.

Pull, not push: a writer that needs read-your-writes calls ``catch_up(until=its
position)`` and returns once the read model includes its events. A batch is computed
outside any lock and written under the view's lock only if the position has not moved
(optimistic); concurrent callers (threads, processes, the Kafka consumer) thus hold
the lock only briefly, and whoever lands a batch applies every event committed before
it, so the others mostly find their events applied already. Processes also take turns
(``view.catching_up``): several computing at once made most batches stale.
The library's notification log is gap-free in commit order, so reading from the
tracked position never skips an event.

On PostgreSQL a command's append writes the read model itself, in its own transaction
(``prepare_along``): nothing is left to catch up when it commits, unless it declined
(the read model behind, its write lock taken, a batch too large), and then catching up
works as above.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

from eventsourcing.application import Application
from eventsourcing.persistence import Notification, Recording, Tracking
from eventsourcing.utils import get_topic

from ledger_core.account import account_uuid
from ledger_core.errors import InvariantViolation
from persistence.log_originators import MAX_SPAN_EVENTS, originators_between
from persistence.log_shares import select_share_window
from projections.batches import Batch, Preread, StalePosition, TooLarge
from projections.bulk import MIN_STAGED_ROWS
from projections.ledger import LedgerProjection
from projections.shares import Share
from projections.views import LedgerViewQueries

DEFAULT_BATCH_EVENTS = 500
MAX_BATCH_EVENTS = 10_000
MAX_STALE_RETRIES = 1_000  # batches lost to other writers in one call; each loss is progress for someone


class Projector:
    def __init__(self, app: Application[Any], view: LedgerViewQueries,
                 batch_events: int = DEFAULT_BATCH_EVENTS, share: Share | None = None) -> None:
        """With ``share``, this projector applies only its share of the events (a replay
        split between processes, projections/shares.py) and tracks its own position,
        under a name of its own (``replay_share``)."""
        if not 1 <= batch_events <= MAX_BATCH_EVENTS:
            raise ValueError(f"batch_events must be 1..{MAX_BATCH_EVENTS}")
        self.app = app
        self.view = view
        self.projection = LedgerProjection(view)
        self.share = share
        self.name = app.name if share is None else app.name + share.name_suffix
        self.batch_events = batch_events
        self._projected = frozenset(self.projection.topics)  # the topics whose events it decodes and applies
        self._lock = threading.Lock()  # the view's open batch is per instance: one at a time
        self.applied_along = 0  # the read model stood at least here once a write along committed

    @property
    def position(self) -> int:
        return self.view.position(self.name)

    def catch_up(self, until: int | None = None, *, stop: int | None = None,
                 progress: Callable[[int, int], None] | None = None, written: Sequence[Recording] = ()) -> int:
        """Applies pending events until the read model reaches ``until`` (or the end of
        the log when None), never past ``stop``. Returns the position reached;
        ``progress(position, events_applied)`` is called after each batch.

        ``written``: what the caller has just appended, in log order. When those are
        exactly the pending events (the read model stands right before the first), they
        are applied as they are, without reading them back from the log."""
        with self._lock, self.view.catching_up(self.name) as read_in_turn:
            stale = 0
            while True:
                position = self.position if read_in_turn is None else read_in_turn
                read_in_turn = None  # good for the first round only
                if until is not None and position >= until:
                    return position  # applied already, maybe by another writer's batch
                events: list[Any] | None = None
                if written and written[0].notification.id == position + 1 and stop is None:
                    # No other writer's event lies between one append's ids: the recorder
                    # holds the events table's lock while the append takes them.
                    notifications: Sequence[Notification] = [r.notification for r in written]
                    events = [r.domain_event if r.notification.topic in self._projected else None for r in written]
                else:
                    notifications = self._read(position + 1, stop)
                if not notifications:
                    return position
                try:
                    self._apply(position, notifications, events)
                except InvariantViolation:
                    if self.position == position:
                        raise  # the rows were current: the events really break an invariant
                    stale += 1  # computed on rows another writer changed meanwhile: try again
                    written = ()
                    continue
                except StalePosition:
                    stale += 1  # another writer's batch landed first; it may well hold ours
                    if stale > MAX_STALE_RETRIES:
                        raise
                    written = ()  # read from the log from now on
                    continue
                position = notifications[-1].id
                if progress:
                    progress(position, len(notifications))
                if events is not None:
                    written = ()
                    if until is not None and position >= until:
                        return position
                    continue
                if len(notifications) < self.batch_events and (until is None or position >= until):
                    return position

    def _read(self, start: int, stop: int | None) -> Sequence[Notification]:
        # The upper bound is applied here, not in SQL: the plan of a bounded range depends on
        # the table's statistics, and after a bulk load PostgreSQL sorted everything from
        # ``start`` on for each batch (about 100 ms each; 5 s of a 15 s replay).
        found = self.app.recorder.select_notifications(start=start, limit=self.batch_events)
        return found if stop is None else [n for n in found if n.id <= stop]

    def replay_share(self, stop: int) -> int:
        """This projector's share of a split replay, up to ``stop`` (where its position then
        stands). It alone writes under its name, so no batch of it goes stale; each window of
        the log starts where the last ended, so the events it was not sent are not its own."""
        if self.share is None:
            raise ValueError("replay_share needs a projector with a share")
        share_filter = self.share.filter(self.projection.topics)
        with self._lock:
            position = self.position
            while position < stop:
                window = select_share_window(self.app, position + 1, self.batch_events, share_filter)
                notifications = [n for n in window if n.id <= stop]
                if not notifications:
                    break
                self._apply(position, notifications)
                position = notifications[-1].id
            if position < stop:  # the events left up to stop are others'
                with self.view.batch_at(self.name, position, ()) as batch:
                    batch.track(Tracking(self.name, stop))
            return stop

    def prepare_along(self, events: Sequence[Any]) -> _Along | None:
        """Writing the read model in the transaction of an append (persistence/appending.py
        WrittenAlong): the write is readable once committed, with no second transaction and
        no turn to take. Here, before the append's transaction, the rows its ``events``
        need are read (or taken from the kept ones), so that no read waits while the append
        holds the events table's lock; _Along.write_along then writes in that transaction.

        None (the caller catches up after, as before) for a batch too large to write inside
        the append's pipeline, or while this process is catching up (its catch-up holds the
        view's batch and the kept rows, and applies these events too)."""
        if self.share is not None or not events or len(events) >= MIN_STAGED_ROWS:
            return None
        if not self._lock.acquire(blocking=False):
            return None
        try:
            wanted = self._projected
            projected = [e if get_topic(type(e)) in wanted else None for e in events]
            ids = _accounts_of(projected)

            def bill_numbers(rows: dict[str, Any], numbers: dict[tuple[Any, ...], str]) -> set[str]:
                return self.projection.bill_numbers(lambda i: rows.get(str(i)), projected, numbers)

            preread = self.view.preread(self.name, ids, lambda position: self._kept_current(position, ids),
                                        bill_numbers, self._changed_between)
        finally:
            self._lock.release()
        return _Along(self, projected, preread)

    def _write_along(self, cursor: Any, events: list[Any], preread: Preread,
                     positions: Sequence[int]) -> Callable[[], None] | None:
        """See _Along.write_along."""
        if len(events) != len(positions) or positions[-1] - positions[0] + 1 != len(positions):
            return None
        if not self._lock.acquire(blocking=False):
            return None
        try:
            try:
                batch = self._apply(positions[0] - 1, [_At(p) for p in positions], events, along=(cursor, preread))
            except (StalePosition, TooLarge):
                return None
        finally:
            self._lock.release()
        reached, kept = batch.final_position, batch.kept

        def committed() -> None:
            self.applied_along = max(self.applied_along, reached)
            if kept is not None and self._lock.acquire(blocking=False):  # else a catch-up keeps its own
                try:
                    self.view.kept.keep(kept)
                finally:
                    self._lock.release()

        return committed

    def _apply(self, position: int, notifications: Sequence[Notification | _At], events: list[Any] | None = None,
               along: tuple[Any, Preread] | None = None) -> Batch:
        """Applies the events in one batch of the view: in its own transaction (``batch_at``)
        or, ``along`` an append, in the append's (``batch_in``: its cursor, the rows read before)."""
        name, wanted = self.name, self._projected
        if events is None and self.share is not None:
            events = self.share.events(notifications, wanted, self._decoded)  # type: ignore[arg-type]
        elif events is None:
            events = [self._decoded(n) if n.topic in wanted else None for n in notifications]  # type: ignore[union-attr,arg-type]
        process = self.projection.process_event  # bound once: each lookup builds a new dispatch wrapper
        if along is None:
            ids = _accounts_of(events)
            if self.share is None:
                self._kept_current(position, ids)
            batching = self.view.batch_at(name, position, ids)
        else:
            batching = self.view.batch_in(along[0], name, position, along[1])
        with batching as batch:
            self.projection.prefetch_bills(events)
            for event, notification in zip(events, notifications, strict=True):
                tracking = Tracking(name, notification.id)
                if event is None:
                    batch.track(tracking)  # not this read model's event: only the position moves
                else:
                    process(event, tracking)
        return batch

    def _kept_current(self, position: int, ids: set[Any]) -> None:
        """The rows the view kept from its last batch stood at an earlier position when other
        writers' batches came in between: the rows of the accounts their events changed
        leave the cache. An order's or a subscription's event may change any account's rows:
        then all leave. The log is read only for a batch that holds a kept account (``ids``):
        else it would cost a round trip and spare no read (a post on one of a million
        accounts, say), and the cache is dropped instead."""
        kept = self.view.kept
        since = kept.position
        if since is None or since == position:
            return
        changed = None
        if kept.holds_any(str(i) for i in ids):
            changed = self._changed_between(since, position)
        kept.moved(since, position, changed)

    def _changed_between(self, since: int, position: int) -> set[str] | None:
        """The accounts (aggregate ids' text) whose rows the events after ``since`` up to
        ``position`` change, read from the log; None when they may change any (an order's
        or a subscription's event) or the span is too long to read."""
        if not since < position <= since + MAX_SPAN_EVENTS:
            return None
        changed = set()
        for aggregate_id, topic in originators_between(self.app, since, position):
            if topic in self.projection.account_topics:
                changed.add(aggregate_id)
            elif topic in self._projected:
                return None
        return changed

    def _decoded(self, notification: Notification) -> Any:
        return self.app.mapper.to_domain_event(_without_nul(notification))


_NUL = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")


class _Along:
    """An append's events and the rows read for them, until the append writes them along."""

    def __init__(self, projector: Projector, events: list[Any], preread: Preread) -> None:
        self.projector, self.events, self.preread = projector, events, preread

    def write_along(self, cursor: Any, positions: Sequence[int]) -> Callable[[], None] | None:
        """The read model's changes, in the append's transaction (``cursor``), where its events
        now lie at ``positions``: written only if the read model stands right before the
        first of them, as when the rows were read (checked under the view's write lock; the
        append holds the events table's lock, so no later event can be applied meanwhile).
        Returns what to do once committed; None if it wrote nothing."""
        return self.projector._write_along(cursor, self.events, self.preread, positions)


def _accounts_of(events: Sequence[Any]) -> set[Any]:
    """The ids of the rows the events change: their accounts', and those other aggregates' events name."""
    ids = {e.originator_id for e in events if e is not None}
    ids |= {account_uuid(a) for e in events if isinstance(a := getattr(e, "account_id", None), str)}
    return ids


class _At(NamedTuple):
    """Where an event an append has just stored lies in the log (all _apply needs of a Notification)."""

    id: int


def _without_nul(notification: Notification) -> Notification:
    """An event stored before text was checked may hold NUL, which PostgreSQL text refuses:
    the read model shows U+FFFD instead, so one such event cannot stop the projection."""
    if b"\\u0000" not in notification.state:
        return notification
    return replace(notification, state=_NUL.sub(rb"\1\\ufffd", notification.state))
