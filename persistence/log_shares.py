"""The log read in shares, for a replay split between processes (projections/shares.py):
how many events each aggregate has, and one share's window of the log.
PostgreSQL only: SQLite writes one at a time, so its replays are never split.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Notification
from eventsourcing.postgres import PostgresDatastore

from persistence.database import NO_STATEMENT_TIMEOUT

# An aggregate's share key: the first 8 bytes of its id as a signed bigint (projections/shares.py
# share_key computes the same in Python). Account ids are name-based UUIDs: their bytes are a hash.
SHARE_KEY = "('x' || encode(substring(uuid_send(originator_id) FROM 1 FOR 8), 'hex'))::bit(64)::bigint"


def events_per_aggregate(app: Application[UUID], topics: Iterable[str]) -> dict[UUID, int]:
    """How many events of ``topics`` each aggregate has in the log (to split a replay evenly)."""
    wanted = sorted(set(topics))
    datastore = app.recorder.datastore  # type: ignore[attr-defined]
    if not wanted or not isinstance(datastore, PostgresDatastore):
        raise ValueError("a split replay needs PostgreSQL and topics")
    with datastore.transaction(commit=False) as cursor:
        cursor.execute(NO_STATEMENT_TIMEOUT)
        cursor.execute(f"SELECT originator_id, COUNT(*) AS events FROM {_events(app)} "
                       "WHERE topic = ANY(%s) GROUP BY originator_id", (wanted,))
        return {row["originator_id"]: row["events"] for row in cursor.fetchall()}


@dataclass(frozen=True)
class ShareFilter:
    """Which events of the log a share of a split replay reads: every event of ``shared``
    topics; of ``keyed`` topics, those of the aggregates listed in ``own``, and of those not
    in ``listed`` whose share key lies in ``low``..``high``."""

    shared: tuple[str, ...]
    keyed: tuple[str, ...]
    low: int
    high: int
    own: tuple[UUID, ...] = ()
    listed: tuple[UUID, ...] = ()


def select_share_window(app: Application[UUID], start: int, limit: int, share: ShareFilter) -> list[Notification]:
    """Of the ``limit`` notifications from ``start`` on, those ``share`` reads, and the last
    one in any case (the share's position moves past the others' events by it). The window
    is an ordered index scan with a limit: with the filter inside, PostgreSQL estimated few
    rows and sorted everything past ``start`` instead."""
    datastore = app.recorder.datastore  # type: ignore[attr-defined]
    statement = (
        "SELECT * FROM (SELECT w.*, MAX(w.notification_id) OVER () AS window_end FROM "
        f"(SELECT * FROM {_events(app)} "
        "WHERE notification_id >= %(start)s ORDER BY notification_id LIMIT %(limit)s) AS w) AS s "
        "WHERE notification_id = window_end OR topic = ANY(%(shared)s) OR (topic = ANY(%(keyed)s) AND "
        f"(originator_id = ANY(%(own)s) OR (NOT originator_id = ANY(%(listed)s) AND {SHARE_KEY} BETWEEN %(low)s AND %(high)s))) "
        "ORDER BY notification_id")
    params = {"start": start, "limit": limit, "shared": list(share.shared), "keyed": list(share.keyed),
              "own": list(share.own), "listed": list(share.listed), "low": share.low, "high": share.high}
    with datastore.get_connection() as conn, conn.cursor() as cursor:
        cursor.execute(statement, params, prepare=True)
        return [Notification(id=row["notification_id"], originator_id=row["originator_id"],
                             originator_version=row["originator_version"], topic=row["topic"], state=bytes(row["state"]))
                for row in cursor.fetchall()]


def count_up_to(app: Application[UUID], position: int) -> int:
    """How many events the log holds up to ``position`` (a split replay reads only its own)."""
    datastore = app.recorder.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=False) as cursor:
        cursor.execute(NO_STATEMENT_TIMEOUT)
        cursor.execute(f"SELECT COUNT(*) AS events FROM {_events(app)} WHERE notification_id <= %s", (position,))
        return cursor.fetchone()["events"]


def _events(app: Application[UUID]) -> str:
    """The log's table, qualified by its schema."""
    return f'"{app.recorder.datastore.schema}"."{app.recorder.events_table_name}"'  # type: ignore[attr-defined]
