"""Schema versions: which tables and columns a database holds, and the migrations between.

A table ``ledger_schema`` holds one row per migration applied. The code knows its own
version (the last migration in MIGRATIONS). On start:
- an empty database is brought to the code's version at once (what `make run` needs);
- a database at the code's version starts;
- an older one (or one from before versions, which has events but no ``ledger_schema``)
  is refused with the command to run: `ledger db upgrade`;
- a newer one is refused: this code would not know its tables.

`ledger db upgrade` applies the pending migrations in order, each idempotent, under the
creation lock (persistence/database.py), so processes upgrading at once take turns and the
later ones find nothing to do. A migration that changes what the read models hold says so
(``rebuilds_read_models``) and the upgrade rebuilds them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from persistence.database import DatabaseConfig, connect_postgres

SCHEMA_TABLE = "ledger_schema"
EVENTS_TABLES = {"postgres": "ledger_events", "sqlite": "stored_events"}  # the library's names


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    postgres: tuple[str, ...] = ()  # statements beyond the tables' CREATE ... IF NOT EXISTS
    sqlite: tuple[str, ...] = ()
    rebuilds_read_models: bool = False


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "baseline: events, audit records, key claims, outboxes, positions, read models and reminders "
                 "as of 2026-12-04"),
    Migration(2, "index accounts by opening time (newest customers first)",
              postgres=('CREATE INDEX IF NOT EXISTS rm_accounts_opened ON "{schema}".rm_accounts (opened_at, account_id)',),
              sqlite=("CREATE INDEX IF NOT EXISTS rm_accounts_opened ON rm_accounts (opened_at, account_id)",)),
    Migration(3, "payments received include the recharges that paid invoices", rebuilds_read_models=True),
    Migration(4, "local days of bill cycles and invoice periods, application names in balance details, "
                 "balance details by application", rebuilds_read_models=True),
    Migration(5, "subscriptions and orders read models; the receipt outbox", rebuilds_read_models=True),
)
CODE_VERSION = MIGRATIONS[-1].version


class SchemaState(Enum):
    EMPTY = "empty"  # no ledger tables at all
    CURRENT = "current"
    OLDER = "older"
    NEWER = "newer"


class SchemaMismatch(RuntimeError):
    """The database is not at the code's schema version; the message says what to run."""


@dataclass(frozen=True)
class Found:
    version: int | None  # None: no ledger_schema table
    has_events: bool

    @property
    def state(self) -> SchemaState:
        if self.version is None:
            return SchemaState.OLDER if self.has_events else SchemaState.EMPTY
        if self.version < CODE_VERSION:
            return SchemaState.OLDER
        return SchemaState.NEWER if self.version > CODE_VERSION else SchemaState.CURRENT


class _Database:
    """The few statements versions need, on either database, outside the library's pools."""

    def __init__(self, config: DatabaseConfig) -> None:
        self.config = config
        self.postgres = config.is_postgres
        self.kind = "postgres" if self.postgres else "sqlite"

    def table(self, name: str) -> str:
        return f'"{self.config.schema}"."{name}"' if self.postgres else f'"{name}"'

    @contextmanager
    def connection(self) -> Iterator[Any]:
        if self.postgres:
            with connect_postgres(self.config) as conn:
                yield conn
        else:
            with closing(sqlite3.connect(str(self.config.sqlite_path), timeout=30, isolation_level=None)) as conn:
                yield conn

    def exists(self, conn: Any, name: str) -> bool:
        if self.postgres:
            row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (self.table(name),)).fetchone()
        else:
            row = conn.execute("SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?",
                               (name,)).fetchone()
        return bool(row[0])


def find(config: DatabaseConfig) -> Found:
    database = _Database(config)
    with database.connection() as conn:
        has_events = database.exists(conn, EVENTS_TABLES[database.kind])
        if not database.exists(conn, SCHEMA_TABLE):
            return Found(None, has_events)
        row = conn.execute(f"SELECT MAX(version) FROM {database.table(SCHEMA_TABLE)}").fetchone()
        return Found(row[0], has_events)


def require_current(config: DatabaseConfig) -> None:
    """Raises SchemaMismatch unless the database is at the code's version."""
    if config.in_memory:
        return
    found = find(config)
    if found.state is SchemaState.OLDER:
        at = "from before schema versions" if found.version is None else f"at schema version {found.version}"
        raise SchemaMismatch(f"the database is {at}; this code needs version {CODE_VERSION}: "
                             "run `ledger db upgrade` (as a role that may create tables), then start again")
    if found.state is SchemaState.NEWER:
        raise SchemaMismatch(f"the database is at schema version {found.version}, newer than this code's "
                             f"{CODE_VERSION}: run a release that knows it")
    if found.state is SchemaState.EMPTY:
        raise SchemaMismatch("the database has no ledger tables: start once as a role that may create them, "
                             "or run `ledger db upgrade`")


def pending(config: DatabaseConfig) -> list[Migration]:
    found = find(config)
    if found.state is SchemaState.NEWER:
        raise SchemaMismatch(f"the database is at schema version {found.version}, newer than this code's "
                             f"{CODE_VERSION}: nothing to upgrade with this release")
    done = found.version or 0
    return [m for m in MIGRATIONS if m.version > done]


def apply(config: DatabaseConfig, migrations: list[Migration]) -> None:
    """Runs the migrations' own statements and records them (the tables themselves were
    created by the caller). Each statement is idempotent, so a crash halfway is repaired by
    running the upgrade again."""
    database = _Database(config)
    with database.connection() as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {database.table(SCHEMA_TABLE)} "
                     "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)")
        for migration in migrations:
            for statement in migration.postgres if database.postgres else migration.sqlite:
                conn.execute(statement.format(schema=config.schema))
            insert = (f"INSERT INTO {database.table(SCHEMA_TABLE)} VALUES (%s, %s, %s) ON CONFLICT DO NOTHING"
                      if database.postgres else
                      f"INSERT OR IGNORE INTO {database.table(SCHEMA_TABLE)} VALUES (?, ?, ?)")
            conn.execute(insert, (migration.version, migration.description,
                                  datetime.now(timezone.utc).isoformat(timespec="seconds")))
