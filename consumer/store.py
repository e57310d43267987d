"""What the consumer keeps in the ledger's database: how far each partition is handled,
and an outbox of messages to publish (dead letters, replies).

A message that appends events is recorded as handled by the event recorder itself, in
the events' transaction (commands/audit_log.py). One that appends none (a duplicate, a
rejection, a dead letter) is recorded here, together with its outbox rows, in one
transaction. Either way a restart resumes exactly after the last handled message, and
nothing the consumer promised to publish is lost: the outbox is emptied only after the
broker has acknowledged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from eventsourcing.postgres import PostgresDatastore

from commands.audit_log import SOURCE_POSITIONS_TABLE
from commands.ledger import Ledger

MAX_OUTBOX_BATCH = 1_000


@dataclass(frozen=True)
class OutboxMessage:
    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class ConsumerStore:
    def __init__(self, ledger: Ledger) -> None:
        self.recorder: Any = ledger.recorder
        self.datastore = self.recorder.datastore
        self.postgres = isinstance(self.datastore, PostgresDatastore)
        if self.postgres:
            schema = self.datastore.schema
            self.outbox, self.positions_table, p = f'"{schema}".consumer_outbox', f'"{schema}".{SOURCE_POSITIONS_TABLE}', "%s"
            ddl = f"CREATE TABLE IF NOT EXISTS {self.outbox} (id bigserial PRIMARY KEY, topic text NOT NULL, " \
                  "key bytea, value bytea NOT NULL, headers text NOT NULL)"
        else:
            self.outbox, self.positions_table, p = "consumer_outbox", SOURCE_POSITIONS_TABLE, "?"
            ddl = f"CREATE TABLE IF NOT EXISTS {self.outbox} (id INTEGER PRIMARY KEY AUTOINCREMENT, " \
                  "topic TEXT NOT NULL, key BLOB, value BLOB NOT NULL, headers TEXT NOT NULL)"
        self._p = p
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(ddl)

    def positions(self, source_prefix: str) -> dict[str, int]:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(f"SELECT source, position FROM {self.positions_table} WHERE source LIKE {self._p}",
                           (source_prefix + "%",))
            return {row["source"]: int(row["position"]) for row in cursor.fetchall()}

    def record(self, source: str, position: int, outbox: list[OutboxMessage]) -> None:
        """Marks a message handled (``position`` = its offset + 1) with what it must publish."""
        with self.datastore.transaction(commit=True) as cursor:
            self.recorder.advance_source(cursor, source, position)
            if outbox:
                cursor.executemany(
                    f"INSERT INTO {self.outbox} (topic, key, value, headers) VALUES ({self._p}, {self._p}, {self._p}, {self._p})",
                    [(m.topic, m.key, m.value, json.dumps([[k, v.decode("utf-8")] for k, v in m.headers]))
                     for m in outbox])

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
