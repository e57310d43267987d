"""The last audit link this process wrote for each aggregate: the next event of the same
aggregate chains to it without reading it back (a query inside every append, and on
PostgreSQL a wait in the middle of its pipeline).

Only links of appends that committed are kept (a rolled-back one never existed), and a
link is used only for the exact version it belongs to, so another process writing the
same aggregate meanwhile makes a miss (read from the table), never a wrong chain.
Bounded: the least recently written aggregates are forgotten first."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from uuid import UUID

MAX_AGGREGATES = 20_000  # about 200 bytes each


class LastLinks:
    def __init__(self, max_aggregates: int = MAX_AGGREGATES) -> None:
        if max_aggregates < 1:
            raise ValueError("max_aggregates must be >= 1")
        self.max_aggregates = max_aggregates
        self._links: OrderedDict[UUID, tuple[int, str]] = OrderedDict()
        self._lock = threading.Lock()
        self._pending = threading.local()  # this thread's append, until it commits

    def link_of(self, aggregate_id: UUID, version: int) -> str | None:
        """The link of ``version`` of the aggregate, if it is the last one this process wrote."""
        with self._lock:
            kept = self._links.get(aggregate_id)
        return kept[1] if kept is not None and kept[0] == version else None

    def written(self, rows: Iterable[tuple[UUID, int, str]]) -> None:
        """The links an append is writing (aggregate, version, link), kept once it commits."""
        pending = {aggregate_id: (version, link) for aggregate_id, version, link in rows}
        self._pending.links = pending

    def begin(self) -> None:
        self._pending.links = {}

    def committed(self) -> None:
        pending: dict[UUID, tuple[int, str]] = getattr(self._pending, "links", {})
        self._pending.links = {}
        with self._lock:
            for aggregate_id, (version, link) in pending.items():
                kept = self._links.pop(aggregate_id, None)
                self._links[aggregate_id] = kept if kept is not None and kept[0] > version else (version, link)
            while len(self._links) > self.max_aggregates:
                self._links.popitem(last=False)
