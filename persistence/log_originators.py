"""Whose events the log holds between two positions: aggregate ids and topics, without the
events themselves (a read-model view learns which of the rows it keeps other writers
changed meanwhile, projections/kept.py).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.postgres import PostgresDatastore

MAX_SPAN_EVENTS = 100_000  # a longer span is not read: whoever asks reads its rows again instead


def originators_between(app: Application[Any], after: int, upto: int) -> list[tuple[str, str]]:
    """(aggregate id as text, topic) of each event with ``after`` < position <= ``upto``."""
    if not 0 <= after <= upto or upto - after > MAX_SPAN_EVENTS:
        raise ValueError(f"a span of the log is 0..{MAX_SPAN_EVENTS} events after a position")
    recorder: Any = app.recorder  # the library's PostgreSQL or SQLite recorder
    datastore = recorder.datastore
    if isinstance(datastore, PostgresDatastore):
        statement = (f'SELECT originator_id::text, topic FROM "{datastore.schema}"."{recorder.events_table_name}" '
                     "WHERE notification_id > %s AND notification_id <= %s")
        with datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(statement, (after, upto), prepare=True)
            return [(row["originator_id"], row["topic"]) for row in cursor.fetchall()]
    with datastore.transaction(commit=False) as cursor:
        cursor.execute(f"SELECT originator_id, topic FROM {recorder.events_table_name} WHERE rowid > ? AND rowid <= ?",
                       (after, upto))
        # The library's SQLite recorder stores a UUID as its hex digits.
        return [(str(UUID(row["originator_id"])), row["topic"]) for row in cursor.fetchall()]
