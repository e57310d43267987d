"""Catching a read model up with the event log, in batches, exactly once.

Pull, not push: a writer that needs read-your-writes calls ``catch_up(until=its
position)`` and returns once the read model includes its events. Concurrent callers
(threads, processes, the Kafka consumer) serialize on the view's write lock; whoever
holds it applies every pending event, so the others usually find nothing left to do.
The library's notification log is gap-free in commit order, so reading from the
tracked position never skips an event.
"""

from __future__ import annotations

import threading
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import Tracking

from projections.ledger import LedgerProjection
from projections.views import LedgerViewQueries, StalePosition

DEFAULT_BATCH_EVENTS = 500
MAX_BATCH_EVENTS = 10_000
MAX_STALE_RETRIES = 100  # a bound on races lost to other catch-up writers in one call


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
            stale = 0
            while True:
                position = self.position
                if until is not None and position >= until:
                    return position
                notifications = self.app.recorder.select_notifications(start=position + 1, limit=self.batch_events)
                if not notifications:
                    return position
                try:
                    self._apply(position, notifications)
                except StalePosition:
                    stale += 1
                    if stale > MAX_STALE_RETRIES:
                        raise
                    continue
                if until is None and len(notifications) < self.batch_events:
                    return notifications[-1].id

    def _apply(self, position: int, notifications: Any) -> None:
        name = self.app.name
        with self.view.write_batch(name, expected_position=position):
            for notification in notifications:
                event = self.app.mapper.to_domain_event(notification)
                self.projection.process_event(event, Tracking(name, notification.id))
