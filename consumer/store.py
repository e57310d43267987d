"""What the consumer reads and writes beside the events: how far each partition is
handled, and the outbox of messages to publish (dead letters, replies).

Positions and outbox rows are written by the event recorder in the events' own
transaction (persistence/recorders.py). When a batch appends no events at all (only
duplicates, refusals, dead letters), ``record`` writes them in a transaction of their
own. Either way a restart resumes exactly after the last handled message, and nothing
the consumer promised to publish is lost: outbox rows are removed only after the broker
has acknowledged them.
"""

from __future__ import annotations

import json
from typing import Any

from eventsourcing.postgres import PostgresDatastore

from commands.ledger import Ledger
from persistence.appending import AppendExtras, OutboxMessage
from persistence.recorders import SOURCE_POSITIONS_TABLE

MAX_OUTBOX_BATCH = 1_000


class ConsumerStore:
    def __init__(self, ledger: Ledger) -> None:
        self.recorder: Any = ledger.recorder
        self.datastore = self.recorder.datastore
        if isinstance(self.datastore, PostgresDatastore):
            schema = self.datastore.schema
            self.outbox = f'"{schema}"."{self.recorder.outbox_table}"'
            self.positions_table, self._p = f'"{schema}".{SOURCE_POSITIONS_TABLE}', "%s"
        else:
            self.outbox, self.positions_table, self._p = self.recorder.outbox_table, SOURCE_POSITIONS_TABLE, "?"

    def positions(self, source_prefix: str) -> dict[str, int]:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(f"SELECT source, position FROM {self.positions_table} WHERE source LIKE {self._p}",
                           (source_prefix + "%",))
            return {row["source"]: int(row["position"]) for row in cursor.fetchall()}

    def record(self, extras: AppendExtras) -> None:
        """Positions and outbox rows of messages that appended no events, in one transaction."""
        with self.datastore.transaction(commit=True) as cursor:
            self.recorder.write_extras(cursor, extras)

    def pending(self, limit: int = MAX_OUTBOX_BATCH) -> list[tuple[int, OutboxMessage]]:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(f"SELECT * FROM {self.outbox} ORDER BY id LIMIT {self._p}", (limit,))
            return [(row["id"], OutboxMessage(row["topic"], None if row["key"] is None else bytes(row["key"]),
                                              bytes(row["value"]),
                                              tuple((k, v.encode("utf-8")) for k, v in json.loads(row["headers"]))))
                    for row in cursor.fetchall()]

    def published(self, ids: list[int]) -> None:
        if ids:
            with self.datastore.transaction(commit=True) as cursor:
                cursor.executemany(f"DELETE FROM {self.outbox} WHERE id = {self._p}", [(i,) for i in ids])
