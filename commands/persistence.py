"""Turns one database URL into the eventsourcing library's persistence settings.

``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` -> embedded SQLite (WAL).
``postgresql://user:pass@host:port/dbname`` -> PostgreSQL through psycopg 3 and its pool.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg.conninfo import conninfo_to_dict

SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIXES = ("postgresql://", "postgres://")


@dataclass(frozen=True)
class DatabaseConfig:
    url: str
    schema: str = "public"  # PostgreSQL only; tests isolate themselves with their own schema
    pool_size: int = 5
    max_overflow: int = 10
    lock_timeout_s: int = 5

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith(POSTGRES_PREFIXES)

    def eventsourcing_env(self) -> dict[str, str]:
        if self.url.startswith(SQLITE_PREFIX):
            path = self.url[len(SQLITE_PREFIX) :]
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
                "POSTGRES_CONNECT_TIMEOUT": "10",
            }
            return env
        raise ValueError(f"unsupported database URL (use sqlite:/// or postgresql://): {self.url!r}")
