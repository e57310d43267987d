"""Turns one database URL into the eventsourcing library's persistence settings.

``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` -> embedded SQLite (WAL).
``postgresql://user:pass@host:port/dbname`` -> PostgreSQL through psycopg 3 and its pool.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from eventsourcing.sqlite import SQLiteDatastore
from psycopg.conninfo import conninfo_to_dict, make_conninfo

SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIXES = ("postgresql://", "postgres://")

# For the few statements that read a whole table (a replay's reads of the log, index
# builds, verify's snapshot): on a large ledger they outlast the statement timeout every
# request has (DatabaseConfig.statement_timeout_ms). Inside a transaction: it ends with it.
NO_STATEMENT_TIMEOUT = "SET LOCAL statement_timeout = 0"


@dataclass(frozen=True)
class DatabaseConfig:
    url: str
    schema: str = "public"  # PostgreSQL only; tests isolate themselves with their own schema
    pool_size: int = 5
    max_overflow: int = 10
    lock_timeout_s: int = 5
    connect_timeout_s: int = 5  # also how long a request waits for a pooled connection
    statement_timeout_ms: int = 30_000  # no statement holds a connection longer; 0 = no limit
    max_waiting: int = 100  # requests queued for a connection beyond that are refused at once (503)

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith(POSTGRES_PREFIXES)

    @property
    def sqlite_path(self) -> str | None:
        """The SQLite file (or in-memory name) the URL names; None for PostgreSQL."""
        return self.url[len(SQLITE_PREFIX):] if self.url.startswith(SQLITE_PREFIX) else None

    @property
    def in_memory(self) -> bool:
        """An in-memory SQLite database: nothing on disk to lock, version or make a folder for."""
        path = self.sqlite_path
        return path is not None and (":memory:" in path or "mode=memory" in path)

    def eventsourcing_env(self) -> dict[str, str]:
        path = self.sqlite_path
        if path is not None:
            if not path:
                raise ValueError("sqlite URL needs a file path: sqlite:///var/ledger.db")
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": path,
                "SQLITE_LOCK_TIMEOUT": str(self.lock_timeout_s),
            }
        if self.is_postgres:
            params = conninfo_to_dict(self.url)
            env = {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_DBNAME": str(params.get("dbname", "postgres")),
                "POSTGRES_HOST": str(params.get("host", "127.0.0.1")),
                "POSTGRES_PORT": str(params.get("port", "5432")),
                "POSTGRES_USER": str(params.get("user", "postgres")),
                "POSTGRES_PASSWORD": str(params.get("password", "")),
                "POSTGRES_SCHEMA": self.schema,
                "POSTGRES_POOL_SIZE": str(self.pool_size),
                "POSTGRES_MAX_OVERFLOW": str(self.max_overflow),
                "POSTGRES_LOCK_TIMEOUT": str(self.lock_timeout_s),
                "POSTGRES_CONNECT_TIMEOUT": str(self.connect_timeout_s),
                "POSTGRES_MAX_WAITING": str(self.max_waiting),
                "POSTGRES_PRE_PING": "y",  # a connection the server dropped is replaced (see PingAfterIdle)
            }
            return env
        raise ValueError(f"unsupported database URL (use sqlite:/// or postgresql://): {self.url!r}")


# The library connects with dbname, host, port, user and password only. libpq takes every
# other parameter from its environment variable when the connection string lacks it, so
# the URL's options reach every pooled connection that way (one database per process).
_LIBRARY_PARAMS = {"dbname", "host", "port", "user", "password"}
LIBPQ_ENVIRONMENT = {
    "sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL", "sslpassword": "PGSSLPASSWORD", "sslnegotiation": "PGSSLNEGOTIATION",
    "sslcompression": "PGSSLCOMPRESSION", "channel_binding": "PGCHANNELBINDING", "gssencmode": "PGGSSENCMODE",
    "requiressl": "PGREQUIRESSL", "krbsrvname": "PGKRBSRVNAME", "gsslib": "PGGSSLIB",
    "application_name": "PGAPPNAME", "options": "PGOPTIONS", "target_session_attrs": "PGTARGETSESSIONATTRS",
    "load_balance_hosts": "PGLOADBALANCEHOSTS", "connect_timeout": "PGCONNECT_TIMEOUT",
    "passfile": "PGPASSFILE", "service": "PGSERVICE", "require_auth": "PGREQUIREAUTH",
    "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION", "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
}


def _params(config: DatabaseConfig) -> dict[str, Any]:
    try:
        return dict(conninfo_to_dict(config.url))
    except psycopg.ProgrammingError as error:
        raise ValueError(f"not a database URL the ledger can use: {error}") from None


class DatabaseUnreachable(RuntimeError):
    """The database could not be reached at start: the message names where, never the password."""


def connection_options(config: DatabaseConfig) -> dict[str, str]:
    """The URL's parameters besides the library's own, and the statement timeout, as libpq
    environment variables; an option libpq has no variable for is refused, not dropped."""
    wanted = {k: str(v) for k, v in _params(config).items() if k not in _LIBRARY_PARAMS}
    unknown = sorted(set(wanted) - set(LIBPQ_ENVIRONMENT))
    if unknown:
        raise ValueError(f"database URL options not supported: {', '.join(unknown)}")
    env = {LIBPQ_ENVIRONMENT[k]: v for k, v in wanted.items()}
    if config.statement_timeout_ms:
        timeout = f"-c statement_timeout={config.statement_timeout_ms}"
        env["PGOPTIONS"] = f"{env['PGOPTIONS']} {timeout}" if "PGOPTIONS" in env else timeout
    return env


def apply_connection_options(config: DatabaseConfig) -> None:
    if config.is_postgres:
        os.environ.update(connection_options(config))


PING_AFTER_IDLE_S = 1.0


class PingAfterIdle:
    """The connection pool's check on handing a connection out: a connection not handed out
    for ``idle_s`` is pinged first, and one the server dropped meanwhile is replaced; one in
    use a moment ago is handed out as it is. Pinging on every checkout cost a round trip
    per statement group, about 10% of a usage post's time. A connection the server drops
    within the second after its last use fails its statement, which the library's recorders
    retry on a fresh connection (tests/service/test_connection_pool.py)."""

    def __init__(self, idle_s: float = PING_AFTER_IDLE_S) -> None:
        self.idle_s = idle_s
        self._handed_out: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    def __call__(self, conn: Any) -> None:
        now = time.monotonic()
        last = self._handed_out.get(conn)
        if last is None or now - last > self.idle_s:
            conn.execute("")
        self._handed_out[conn] = now


def ping_after_idle(pool: Any) -> PingAfterIdle:
    """Installs PingAfterIdle as the pool's check. The library builds the pool and takes
    only an on/off pre-ping setting, so the check it set is replaced here."""
    check = PingAfterIdle()
    pool._check = check
    return check


def where(config: DatabaseConfig) -> str:
    """host:port/dbname as user, for messages (never the password)."""
    p = _params(config)
    return f"{p.get('host', '127.0.0.1')}:{p.get('port', '5432')}/{p.get('dbname', 'postgres')} as {p.get('user', 'postgres')}"


def connect_postgres(config: DatabaseConfig) -> psycopg.Connection[Any]:
    params = dict(_params(config))
    params.setdefault("connect_timeout", config.connect_timeout_s)
    try:
        return psycopg.connect(make_conninfo(**params), autocommit=True)
    except psycopg.Error as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        password = str(params.get("password") or "")
        if password:
            reason = reason.replace(password, "***")
        raise DatabaseUnreachable(f"cannot reach PostgreSQL at {where(config)}: {reason}") from None


def check_reachable(config: DatabaseConfig) -> None:
    """One direct connection, bounded by connect_timeout_s: a wrong host, port or password
    fails here at once with a message naming the server, instead of a pool timeout later."""
    if config.is_postgres:
        connect_postgres(config).close()


@contextmanager
def creation_lock(config: DatabaseConfig) -> Iterator[None]:
    """Held while a process creates tables: processes started at once on an empty database
    create them one after another (CREATE TABLE IF NOT EXISTS alone races on PostgreSQL's
    catalog: "duplicate key value violates unique constraint pg_type_typname_nsp_index")."""
    if not config.is_postgres:
        if config.in_memory:
            yield
            return
        with open(f"{config.sqlite_path}.lock", "a") as lock_file:  # SQLite: a file lock beside the database
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
        return
    with connect_postgres(config) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (f"ledger.ddl.{config.schema}",))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (f"ledger.ddl.{config.schema}",))


@contextmanager
def sqlite_write_transaction(datastore: SQLiteDatastore) -> Iterator[sqlite3.Cursor]:
    """A SQLite transaction that takes the write lock up front (BEGIN IMMEDIATE), so it
    never fails half-way on the upgrade from reader to writer."""
    with datastore.get_connection(commit=True) as connection:
        cursor = connection.cursor().sqlite_cursor  # the sqlite3 cursor itself: it has rowcount
        cursor.execute("BEGIN IMMEDIATE")
        try:
            yield cursor
        except BaseException:
            connection.rollback()
            raise
        connection.commit()
