"""The library's repository, replaying events without its per-event runtime check.

The library's ``project_aggregate`` asserts that each event it replays satisfies a runtime-
checkable protocol: about 24 us an event on this machine, often more than applying the
event. Every load pays it for each event after the latest snapshot (up to 199), and so do
as-of questions and a cached aggregate's fast-forward. Every event here is a library domain
event, whose ``mutate`` the replay calls directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eventsourcing.application import Repository


def project_events(aggregate: Any, events: Iterable[Any]) -> Any:
    """The aggregate after ``events``, in order (None and no events: None, as the library's)."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class LedgerRepository(Repository):  # type: ignore[type-arg]
    def get(self, aggregate_id: Any, *, projector_func: Any = project_events, **kwargs: Any) -> Any:
        return super().get(aggregate_id, projector_func=projector_func, **kwargs)
