"""What is written with every append of events, in the same transaction.

The library's application recorders are subclassed at one seam, ``_insert_events``,
which runs inside the transaction that appends the events and before their insert.
There, for every event, an audit row: who or what caused it, when, and its chain link
(``ledger_core/audit.py``). An audit row that cannot be written rolls the whole append
back, so no event is ever stored without its link.

What an append writes besides its events (the cause, key claims, source positions, an
outbox) arrives as ``AppendExtras`` (persistence/appending.py). On PostgreSQL, a writer
along (``WrittenAlong``: the read model) prepares before the transaction and writes in a
savepoint of it once the events have their positions; its failure never fails the append.
"""

from __future__ import annotations

import json
import logging
from base64 import b64encode
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import orjson
import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteCursor,
    SQLiteDatastore,
)
from eventsourcing.utils import retry
from psycopg.rows import dict_row
from psycopg.sql import SQL, Identifier

from ledger_core.audit import GENESIS_LINK, ChainEntry, canonical_bytes, next_link
from ledger_core.plain_json import plain
from persistence.appending import (
    AppendExtras,
    KeyClaim,
    OutboxMessage,
    PreparedAlong,
    current_along,
    current_appending,
    current_cause,
    events_saving,
)
from persistence.last_links import LastLinks
from persistence.safe_state import refuse_unsafe_text

log = logging.getLogger(__name__)

STREAM_ROWS = 2_000  # rows fetched at a time when walking the whole log
SOURCE_POSITIONS_TABLE = "source_positions"  # one row per source (e.g. a Kafka partition)
KEYS_LOCK = "ledger.client_keys_table"  # serializes creating (and backfilling) the keys table


def _audit_rows(stored_events: Sequence[StoredEvent], previous: dict[UUID, str]) -> list[tuple[Any, ...]]:
    """(originator_id, version, recorded_at, cause json, link) per event; ``previous`` holds
    the last link of each aggregate before this append and is advanced here."""
    current, extras = current_cause(), current_appending()
    causes = extras.causes if extras else {}
    recorded_at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    rows = []
    for e in stored_events:
        aggregate_id = _uuid(e.originator_id)
        cause = causes.get((aggregate_id, e.originator_version), current)
        canonical = canonical_bytes(str(aggregate_id), e.originator_version, e.topic, e.state, cause, recorded_at)
        link = next_link(previous[aggregate_id], canonical)
        previous[aggregate_id] = link
        rows.append((aggregate_id, e.originator_version, recorded_at, _cause_text(cause), link))
    return rows


def _cause_text(cause: dict[str, Any]) -> str:
    """The cause as stored: JSON that is read back parsed (the chain hashes the parsed
    value, never this text), so orjson writes it where it can, in a tenth of the time."""
    if plain(cause):
        try:
            return orjson.dumps(cause, option=orjson.OPT_SORT_KEYS).decode("utf-8")
        except orjson.JSONEncodeError:  # an integer past 64 bits, a lone surrogate
            pass
    return json.dumps(cause, sort_keys=True)


def _json_rows(rows: Sequence[tuple[Any, ...]]) -> str:
    """Rows of text and integers as one JSON array of arrays (values read back with ->>)."""
    return orjson.dumps(rows).decode("utf-8")  # text and integers: as json.dumps, faster


def outbox_rows(messages: Sequence[OutboxMessage]) -> list[tuple[Any, ...]]:
    return [(m.topic, m.key, m.value, json.dumps([[k, v.decode("utf-8")] for k, v in m.headers])) for m in messages]


def _first_versions(stored_events: Sequence[StoredEvent]) -> dict[UUID, int]:
    first: dict[UUID, int] = {}
    for e in stored_events:
        first.setdefault(_uuid(e.originator_id), e.originator_version)
    return first


def _uuid(value: UUID | str) -> UUID:
    """The id as a UUID; most already are one (a round trip through text costs about
    2 microseconds an event)."""
    return value if type(value) is UUID else UUID(str(value))


def _prepare_along() -> PreparedAlong | None:
    along = current_along()
    if along is None:
        return None
    try:
        return along.prepare_along(events_saving())
    except Exception:  # noqa: BLE001 - the events' write must not fail for the read model's
        log.warning("the read model could not be prepared to go with an append; it catches up after it",
                    exc_info=True)
        return None


def _write_along(conn: psycopg.Connection[Any], prepared: PreparedAlong, ids: Sequence[int]) -> Callable[[], None] | None:
    """``prepared``'s writes in a savepoint of the append's transaction: if they fail, they
    are rolled back and the events are stored all the same (a reader of the read model
    then waits for the catch-up, as it did before anything was written along)."""
    try:
        with conn.transaction(), conn.cursor() as cursor:
            return prepared.write_along(cursor, ids)
    except Exception:  # noqa: BLE001 - the events' write must not fail for the read model's
        log.warning("the read model was not written with an append; it catches up after it", exc_info=True)
        return None


def _after_commit(once_committed: Callable[[], None]) -> None:
    try:
        once_committed()
    except Exception:  # noqa: BLE001 - the append has committed: it must not answer an error now
        log.warning("what follows a committed write along failed; the write stands", exc_info=True)


def _entry(row: Any) -> ChainEntry:
    state = row["state"]
    return ChainEntry(
        aggregate_id=str(UUID(str(row["originator_id"]))),
        version=row["originator_version"],
        topic=row["topic"],
        state=bytes(state),
        cause=json.loads(row["cause"]) if row["cause"] is not None else {},
        recorded_at=row["recorded_at"] or "",
        link=row["link"] or "",  # a missing audit row can never match
        position=row["position"],
    )


class _WritesExtras:
    """Shared by both recorders; each supplies the statements in its own dialect."""

    _advance_source: Any
    _insert_outbox: Any
    _insert_claim: Any
    keys_table: str

    def write_extras(self, cursor: Any, extras: AppendExtras | None) -> None:
        """Source positions, outbox messages and claimed keys, in the caller's transaction."""
        if extras is None:
            return
        for source, position in sorted(extras.sources.items()):
            cursor.execute(self._advance_source, (source, position))
        if extras.outbox:
            cursor.executemany(self._insert_outbox, outbox_rows(extras.outbox))
        if extras.claims and self.claims_with_extras:
            self.write_claims(cursor, extras)

    claims_with_extras = True  # else the recorder writes them itself (write_claims), see PostgreSQL's
    last_links: LastLinks

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        self.last_links.begin()
        ids = self._append(stored_events, **kwargs)
        self.last_links.committed()  # returned: the append's transaction committed
        return ids

    def _append(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        return super().insert_events(stored_events, **kwargs)  # type: ignore[misc,no-any-return]

    def _known_links(self, first: dict[UUID, int]) -> dict[UUID, str]:
        """The link before each aggregate's first version here, where known without a read."""
        known = {}
        for aggregate_id, version in first.items():
            link = GENESIS_LINK if version == 1 else self.last_links.link_of(aggregate_id, version - 1)
            if link is not None:
                known[aggregate_id] = link
        return known

    def write_claims(self, cursor: Any, extras: AppendExtras | None) -> None:
        """The claimed keys, in one order for every writer (no deadlock between two appends
        claiming the same keys); a key claimed before makes this raise IntegrityError."""
        if extras is not None and extras.claims:
            self._insert_claim_rows(cursor, sorted(claim.row() for claim in extras.claims))

    def _insert_claim_rows(self, cursor: Any, rows: list[tuple[Any, ...]]) -> None:
        cursor.executemany(self._insert_claim, rows)

    def _keys_ddl(self, table: str) -> str:
        return (f"CREATE TABLE {table} (account_id TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, "
                "fingerprint TEXT NOT NULL, transaction_no TEXT, amount TEXT NOT NULL, "
                "PRIMARY KEY (account_id, kind, key))")


class PostgresAuditedRecorder(_WritesExtras, PostgresApplicationRecorder):
    claims_with_extras = False  # written after the events, see _insert_stored_events

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.last_links = LastLinks()
        self.audit_table = f"{events_table_name}_audit"
        self.check_identifier_length(self.audit_table)
        table = SQL("{0}.{1}").format(Identifier(datastore.schema), Identifier(self.audit_table))
        events = SQL("{0}.{1}").format(Identifier(datastore.schema), Identifier(events_table_name))
        self.sql_create_statements.append(SQL(
            "CREATE TABLE IF NOT EXISTS {0} (originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
            "recorded_at text NOT NULL, cause text NOT NULL, link char(64) NOT NULL, "
            "PRIMARY KEY (originator_id, originator_version))").format(table))
        positions = SQL("{0}.{1}").format(Identifier(datastore.schema), Identifier(SOURCE_POSITIONS_TABLE))
        self.sql_create_statements.append(SQL(
            "CREATE TABLE IF NOT EXISTS {0} (source text PRIMARY KEY, position bigint NOT NULL)").format(positions))
        self._advance_source = SQL(
            "INSERT INTO {0} AS p VALUES (%s, %s) ON CONFLICT (source) DO UPDATE SET position = excluded.position "
            "WHERE p.position < excluded.position").format(positions)
        self.outbox_table = f"{events_table_name}_outbox"
        outbox = SQL("{0}.{1}").format(Identifier(datastore.schema), Identifier(self.outbox_table))
        self.sql_create_statements.append(SQL(
            "CREATE TABLE IF NOT EXISTS {0} (id bigserial PRIMARY KEY, topic text NOT NULL, key bytea, "
            "value bytea NOT NULL, headers text NOT NULL)").format(outbox))
        self._insert_outbox = SQL("INSERT INTO {0} (topic, key, value, headers) VALUES (%s, %s, %s, %s)").format(outbox)
        self.keys_table = f"{events_table_name}_keys"
        keys = SQL("{0}.{1}").format(Identifier(datastore.schema), Identifier(self.keys_table))
        self._keys = keys
        self._insert_claim = SQL("INSERT INTO {0} VALUES (%s, %s, %s, %s, %s, %s)").format(keys)
        self._insert_claims = SQL(
            "INSERT INTO {0} SELECT r->>0, r->>1, r->>2, r->>3, r->>4, r->>5 FROM json_array_elements(%s::json) AS r"
        ).format(keys)
        self._select_claims = SQL(
            "SELECT k.* FROM {0} k JOIN unnest(%s::text[], %s::text[], %s::text[]) AS w(account_id, kind, key) "
            "ON k.account_id = w.account_id AND k.kind = w.kind AND k.key = w.key").format(keys)
        self._select_links = SQL(
            "SELECT a.originator_id, a.link FROM {0} a JOIN unnest(%s::uuid[], %s::bigint[]) AS w(id, version) "
            "ON a.originator_id = w.id AND a.originator_version = w.version").format(table)
        # A clash here means the event exists already: skip it, so the event insert itself
        # raises the IntegrityError that callers treat as a lost race. All rows in one
        # statement, as one JSON array of rows: encoded by the json module in C, where
        # psycopg spells out array parameters value by value in Python (5x the time).
        self._insert_audit = SQL(
            "INSERT INTO {0} SELECT (r->>0)::uuid, (r->>1)::bigint, r->>2, r->>3, r->>4 "
            "FROM json_array_elements(%s::json) AS r ON CONFLICT DO NOTHING").format(table)
        # In the given order (the notification ids returned follow it), state as base64.
        self._insert_events_json = SQL(
            "INSERT INTO {0} (originator_id, originator_version, topic, state) "
            "SELECT (r->>0)::{1}, (r->>1)::bigint, r->>2, decode(r->>3, 'base64') "
            "FROM json_array_elements(%s::json) WITH ORDINALITY AS e(r, n) ORDER BY n RETURNING notification_id"
        ).format(events, SQL(datastore.originator_id_type))
        self._trail = SQL(
            "SELECT e.notification_id AS position, e.originator_id, e.originator_version, e.topic, e.state, "
            "a.cause, a.recorded_at, a.link FROM {0} e LEFT JOIN {1} a "
            "ON a.originator_id = e.originator_id AND a.originator_version = e.originator_version"
        ).format(events, table)
        self._orphans = SQL(
            "SELECT COUNT(*) AS n FROM {1} a WHERE NOT EXISTS (SELECT 1 FROM {0} e "
            "WHERE e.originator_id = a.originator_id AND e.originator_version = a.originator_version)"
        ).format(events, table)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # the library's, for a lost connection
    def _append(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """The library's insert_events, except that a write that loses its race (a taken
        version or key) raises IntegrityError at once. In the library's, the commit of the
        aborted pipeline could raise PipelineAborted over it, which its retry took for a lost
        connection: 0.2 s asleep, then the same IntegrityError. Measured with two processes
        taking turns on one account from stale copies: 178 of 198 lost races slept, 211 ms a
        write at the median; 4.5 ms with this."""
        failed: Exception | None = None
        ids: Sequence[int] | None = None
        prepared, once_committed = _prepare_along(), None
        with self.datastore.get_connection() as conn:
            try:
                with conn.pipeline() as pipeline, conn.transaction():
                    with conn.cursor() as curs:
                        self._insert_events(curs, stored_events, **kwargs)
                    with conn.cursor() as curs:
                        try:
                            self._insert_stored_events(curs, stored_events, **kwargs)
                            pipeline.sync()  # a constraint broken raises here, not at the commit
                            ids = self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
                        except Exception as error:  # raised once the pipeline is closed (no psycopg warning)
                            failed = error
                    if prepared is not None and ids and failed is None:
                        once_committed = _write_along(conn, prepared, ids)
            except psycopg.errors.PipelineAborted:
                if failed is None:
                    raise
            if failed is not None:
                raise failed  # inside get_connection: psycopg's errors become the library's
        if once_committed is not None:
            _after_commit(once_committed)
        return ids

    def _insert_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        refuse_unsafe_text(stored_events)
        super()._insert_events(curs, stored_events, **kwargs)
        first = _first_versions(stored_events)
        previous = self._known_links(first)
        wanted = [(aggregate_id, first[aggregate_id] - 1) for aggregate_id in first if aggregate_id not in previous]
        if wanted:  # every previous link not known here in one query
            curs.execute(self._select_links, ([w[0] for w in wanted], [w[1] for w in wanted]), prepare=True)
            found = {row["originator_id"]: row["link"] for row in curs.fetchall()}
            # A missing previous audit row gives "", which can never match: a broken chain shows it.
            previous.update({a: found.get(a, "") for a, _ in wanted})
        rows = _audit_rows(stored_events, previous)
        self.last_links.written((r[0], r[1], r[4]) for r in rows)
        curs.execute(self._insert_audit, (_json_rows([(str(r[0]), *r[1:]) for r in rows]),), prepare=True)
        self.write_extras(curs, current_appending())

    def _insert_stored_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        """As the library's (table lock, insert returning the notification ids in order),
        with the rows as one JSON array instead of an array of composite values, which
        psycopg spells out field by field in Python. Without the library's NOTIFY: nothing
        here LISTENs (readers poll the log), and a notifying commit takes a lock every
        other notifying commit of the database waits for."""
        self._lock_table(curs)
        rows = [(str(e.originator_id), e.originator_version, e.topic, b64encode(e.state).decode("ascii"))
                for e in stored_events]
        curs.execute(self._insert_events_json, (_json_rows(rows),), prepare=True)
        # Claimed keys last, under the table lock, on a cursor of their own (this one's
        # result holds the notification ids). Last, because a claim that collides fails
        # the pipeline: psycopg would then wrongly believe the statements skipped after it
        # prepared (the library's table lock is), and later find them missing.
        with curs.connection.cursor() as claims:
            self.write_claims(claims, current_appending())

    def _insert_claim_rows(self, cursor: Any, rows: list[tuple[Any, ...]]) -> None:
        cursor.execute(self._insert_claims, (_json_rows(rows),), prepare=True)

    def audit_trail(self, aggregate_id: UUID | None = None, versions: tuple[int, int] | None = None,
                    ) -> Iterator[ChainEntry]:
        """Stored events with their audit records, by aggregate and version, streamed: all
        of them, one aggregate's, or one aggregate's versions ``lo..hi``."""
        where, params = SQL(""), []
        if aggregate_id:
            where, params = SQL(" WHERE e.originator_id = %s"), [aggregate_id]
            if versions:
                where += SQL(" AND e.originator_version BETWEEN %s AND %s")
                params += list(versions)
        query = self._trail + where + SQL(" ORDER BY e.originator_id, e.originator_version")
        with self.datastore.get_connection() as conn, conn.transaction():
            with conn.cursor(name="audit_trail", row_factory=dict_row) as cursor:
                cursor.itersize = STREAM_ROWS
                cursor.execute(query, params or None)
                for row in cursor:
                    yield _entry(row)

    def orphan_audit_records(self) -> int:
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(self._orphans)
            row = cursor.fetchone()
            return int(row["n"]) if row else 0

    def claimed(self, wanted: Iterable[tuple[str, str, str]]) -> list[KeyClaim]:
        """The claims among (account_id, kind, key) triples, in one query."""
        triples = sorted(set(wanted))
        if not triples:
            return []
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(self._select_claims, ([t[0] for t in triples], [t[1] for t in triples],
                                                 [t[2] for t in triples]), prepare=True)
            return [KeyClaim.from_row(row) for row in cursor.fetchall()]

    def ensure_keys_table(self, legacy: Callable[[], Iterable[KeyClaim]]) -> bool:
        """Creates the keys table if it is missing, filled with ``legacy()`` claims in the
        same transaction (keys claimed before the table existed). True if it was created."""
        exists = ("SELECT to_regclass(%s) AS t", (f'"{self.datastore.schema}"."{self.keys_table}"',))
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(*exists)
            row = cursor.fetchone()
            if row and row["t"] is not None:
                return False
        rows = sorted({claim.row() for claim in legacy()})  # read before the transaction: one connection is enough
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (KEYS_LOCK,))
            cursor.execute(*exists)
            row = cursor.fetchone()
            if row and row["t"] is not None:
                return False
            cursor.execute(SQL(self._keys_ddl("{0}")).format(self._keys))
            if rows:
                cursor.executemany(self._insert_claim, rows)
            return True


class SQLiteAuditedRecorder(_WritesExtras, SQLiteApplicationRecorder):
    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events") -> None:
        self.last_links = LastLinks()
        self.audit_table = f"{events_table_name}_audit"
        self.outbox_table = f"{events_table_name}_outbox"
        super().__init__(datastore, events_table_name)
        events, table = events_table_name, self.audit_table
        self._select_link = f"SELECT link FROM {table} WHERE originator_id = ? AND originator_version = ?"
        self._advance_source = (
            f"INSERT INTO {SOURCE_POSITIONS_TABLE} AS p VALUES (?, ?) ON CONFLICT (source) DO UPDATE "
            "SET position = excluded.position WHERE p.position < excluded.position")
        self._insert_outbox = f"INSERT INTO {self.outbox_table} (topic, key, value, headers) VALUES (?, ?, ?, ?)"
        self.keys_table = f"{events_table_name}_keys"
        self._insert_claim = f"INSERT INTO {self.keys_table} VALUES (?, ?, ?, ?, ?, ?)"
        self._insert_audit = f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
        self._trail = (
            "SELECT e.rowid AS position, e.originator_id, e.originator_version, e.topic, e.state, "
            f"a.cause, a.recorded_at, a.link FROM {events} e LEFT JOIN {table} a "
            "ON a.originator_id = e.originator_id AND a.originator_version = e.originator_version"
        )
        self._orphans = (
            f"SELECT COUNT(*) AS n FROM {table} a WHERE NOT EXISTS (SELECT 1 FROM {events} e "
            "WHERE e.originator_id = a.originator_id AND e.originator_version = a.originator_version)"
        )

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), (
            f"CREATE TABLE IF NOT EXISTS {self.audit_table} (originator_id TEXT NOT NULL, "
            "originator_version INTEGER NOT NULL, recorded_at TEXT NOT NULL, cause TEXT NOT NULL, "
            "link TEXT NOT NULL, PRIMARY KEY (originator_id, originator_version))"),
            f"CREATE TABLE IF NOT EXISTS {SOURCE_POSITIONS_TABLE} (source TEXT PRIMARY KEY, position INTEGER NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self.outbox_table} (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, "
            "key BLOB, value BLOB NOT NULL, headers TEXT NOT NULL)"]

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        refuse_unsafe_text(stored_events)
        first = _first_versions(stored_events)
        previous = self._known_links(first)
        for aggregate_id in first.keys() - previous.keys():
            c.execute(self._select_link, (aggregate_id.hex, first[aggregate_id] - 1))
            row = c.fetchone()
            previous[aggregate_id] = row["link"] if row else ""
        rows = _audit_rows(stored_events, previous)
        self.last_links.written((r[0], r[1], r[4]) for r in rows)
        c.executemany(self._insert_audit, [(r[0].hex, *r[1:]) for r in rows])
        self.write_extras(c, current_appending())
        return super()._insert_events(c, stored_events, **kwargs)

    def audit_trail(self, aggregate_id: UUID | None = None, versions: tuple[int, int] | None = None,
                    ) -> Iterator[ChainEntry]:
        where, params = "", ()
        if aggregate_id:
            where, params = " WHERE e.originator_id = ?", (aggregate_id.hex,)
            if versions:
                where += " AND e.originator_version BETWEEN ? AND ?"
                params += versions
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._trail + where + " ORDER BY e.originator_id, e.originator_version", params)
            while (row := c.fetchone()) is not None:
                yield _entry(row)

    def orphan_audit_records(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._orphans)
            return int(c.fetchone()["n"])

    def claimed(self, wanted: Iterable[tuple[str, str, str]]) -> list[KeyClaim]:
        triples = sorted(set(wanted))
        if not triples:
            return []
        found: list[KeyClaim] = []
        with self.datastore.transaction(commit=False) as c:
            for account_id, kind, key in triples:
                c.execute(f"SELECT * FROM {self.keys_table} WHERE account_id = ? AND kind = ? AND key = ?",
                          (account_id, kind, key))
                found.extend(KeyClaim.from_row(row) for row in c.fetchall())
        return found

    def ensure_keys_table(self, legacy: Callable[[], Iterable[KeyClaim]]) -> bool:
        exists = "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?"
        with self.datastore.transaction(commit=False) as c:
            c.execute(exists, (self.keys_table,))
            if c.fetchone() is not None:
                return False
        rows = sorted({claim.row() for claim in legacy()})  # read before taking the write lock
        with self.datastore.get_connection(commit=True) as connection:
            cursor = connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")  # the write lock: one creator at a time
            try:
                cursor.execute(exists, (self.keys_table,))
                if cursor.fetchone() is not None:
                    connection.rollback()
                    return False
                cursor.execute(self._keys_ddl(self.keys_table))
                if rows:
                    cursor.executemany(self._insert_claim, rows)
            except BaseException:
                connection.rollback()
                raise
            connection.commit()
            return True


RECORDER_TOPICS = {
    "eventsourcing.postgres": f"{__name__}:PostgresAuditedRecorder",
    "eventsourcing.sqlite": f"{__name__}:SQLiteAuditedRecorder",
}
