"""Catching a read model up with the event log, in batches, exactly once.

Pull, not push: a writer that needs read-your-writes calls ``catch_up(until=its
position)`` and returns once the read model includes its events. Concurrent callers
(threads, processes, the Kafka consumer) serialize on the view's write lock and read
the position under it; whoever holds it applies every pending event, so the others
usually find their events applied already.
The library's notification log is gap-free in commit order, so reading from the
tracked position never skips an event.
"""

from __future__ import annotations

import threading
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import Tracking

from projections.ledger import LedgerProjection
from projections.views import LedgerViewQueries

DEFAULT_BATCH_EVENTS = 500
MAX_BATCH_EVENTS = 10_000


class Projector:
    def __init__(self, app: Application[Any], view: LedgerViewQueries,
                 batch_events: int = DEFAULT_BATCH_EVENTS) -> None:
        if not 1 <= batch_events <= MAX_BATCH_EVENTS:
            raise ValueError(f"batch_events must be 1..{MAX_BATCH_EVENTS}")
        self.app = app
        self.view = view
        self.projection = LedgerProjection(view)
        self.batch_events = batch_events
        self._lock = threading.Lock()  # the view's open batch is per instance: one at a time

    @property
    def position(self) -> int:
        return self.view.position(self.app.name)

    def catch_up(self, until: int | None = None) -> int:
        """Applies pending events until the read model reaches ``until`` (or the end of
        the log when None). Returns the position reached."""
        with self._lock:
            while True:
                position, applied = self._apply_next_batch(until)
                if applied < self.batch_events or (until is not None and position >= until):
                    return position

    def _apply_next_batch(self, until: int | None) -> tuple[int, int]:
        """One transaction under the view's write lock: the position is read under the
        lock, so no other writer can have applied what this batch applies."""
        name = self.app.name
        with self.view.write_batch(name) as batch:
            if until is not None and batch.position >= until:
                return batch.position, 0
            notifications = self.app.recorder.select_notifications(start=batch.position + 1, limit=self.batch_events)
            for notification in notifications:
                event = self.app.mapper.to_domain_event(notification)
                self.projection.process_event(event, Tracking(name, notification.id))
            return (notifications[-1].id if notifications else batch.position), len(notifications)
