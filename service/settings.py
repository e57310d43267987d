"""Every setting of the service, read once from the environment (deploy/README.md's table lists them)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from persistence.database import DatabaseConfig

DEFAULT_DATABASE_URL = "sqlite:///var/ledger.db"


class InvalidSetting(ValueError):
    """A setting that cannot work: refused at start, by its name, on one line (entrypoints/cli.py)."""


def int_setting(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidSetting(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise InvalidSetting(f"{name} must be {low}..{high}, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    database: DatabaseConfig = field(default_factory=lambda: DatabaseConfig(DEFAULT_DATABASE_URL))
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    http_workers: int = 1
    max_request_bytes: int = 64 * 1024
    projection_batch_events: int = 500
    rate_limit: str = "200/second"  # per API key; "off" turns it off (api/rate_limits.py)
    rate_limit_storage: str = "memory://"
    ready_max_lag_events: int = 10_000  # /readyz says unavailable while the read model is further behind
    create_tables: bool = True  # `serve` creates them once, then its workers skip it (no DDL races)
    # Accounts a process keeps in memory, in each of its caches (the write side's aggregates,
    # the read model's rows): what bounds its memory with any number of accounts.
    warm_accounts: int = 10_000
    # How long a process authenticates with a key it read before reading it again: a key
    # revoked elsewhere is refused here within this time (commands/api_keys.py KeyCache).
    key_cache_ms: int = 1_000
    # The console's session cookies: signed with this secret (`ledger serve` makes one for its
    # workers when it is not set); Secure unless turned off for plain-HTTP development.
    console_secret: str = ""
    console_secure_cookie: bool = True
    # Group commit of money movements (service/group_commit.py): 1 writes each alone.
    group_commit_max_commands: int = 64
    group_commit_max_queued: int = 1_000
    group_commit_wait_us: int = 0
    # Who issues bills, invoices and receipts: printed in every document's header.
    issuer_name: str = "Ledger"
    issuer_tax_id: str = ""
    issuer_address: tuple[str, ...] = ()
    issuer_email: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        url = env.get("LEDGER_DATABASE_URL") or DEFAULT_DATABASE_URL
        database = DatabaseConfig(
            url=url,
            schema=env.get("LEDGER_DATABASE_SCHEMA") or "public",
            pool_size=int_setting(env, "LEDGER_DATABASE_POOL_SIZE", 5, 1, 100),
            connect_timeout_s=int_setting(env, "LEDGER_DATABASE_CONNECT_TIMEOUT_S", 5, 1, 120),
            statement_timeout_ms=int_setting(env, "LEDGER_DATABASE_STATEMENT_TIMEOUT_MS", 30_000, 0, 3_600_000),
            max_waiting=int_setting(env, "LEDGER_DATABASE_MAX_WAITING", 100, 0, 100_000),
        )
        # SQLite takes one writer at a time: more processes only queue on its lock.
        default_workers = 2 if database.is_postgres else 1
        return cls(
            database=database,
            http_host=env.get("LEDGER_HTTP_HOST") or "127.0.0.1",
            http_port=int_setting(env, "LEDGER_HTTP_PORT", 8080, 1, 65535),
            http_workers=int_setting(env, "LEDGER_HTTP_WORKERS", default_workers, 1, 64),
            max_request_bytes=int_setting(env, "LEDGER_MAX_REQUEST_BYTES", 64 * 1024, 1024, 16 * 1024 * 1024),
            projection_batch_events=int_setting(env, "LEDGER_PROJECTION_BATCH_EVENTS", 500, 1, 10_000),
            create_tables=(env.get("LEDGER_CREATE_TABLES") or "true").lower() not in ("false", "0", "no", "off"),
            rate_limit=env.get("LEDGER_RATE_LIMIT") or "200/second",
            rate_limit_storage=env.get("LEDGER_RATE_LIMIT_STORAGE") or "memory://",
            console_secret=env.get("LEDGER_CONSOLE_SECRET", ""),
            console_secure_cookie=(env.get("LEDGER_CONSOLE_SECURE_COOKIE") or "true").lower()
            not in ("false", "0", "no", "off"),
            warm_accounts=int_setting(env, "LEDGER_WARM_ACCOUNTS", 10_000, 1, 1_000_000),
            key_cache_ms=int_setting(env, "LEDGER_KEY_CACHE_MS", 1_000, 0, 60_000),
            group_commit_max_commands=int_setting(env, "LEDGER_GROUP_COMMIT_MAX_COMMANDS", 64, 1, 10_000),
            group_commit_max_queued=int_setting(env, "LEDGER_GROUP_COMMIT_MAX_QUEUED", 1_000, 1, 1_000_000),
            group_commit_wait_us=int_setting(env, "LEDGER_GROUP_COMMIT_WAIT_US", 0, 0, 100_000),
            ready_max_lag_events=int_setting(env, "LEDGER_READY_MAX_LAG_EVENTS", 10_000, 0, 1_000_000_000),
            issuer_name=env.get("LEDGER_ISSUER_NAME") or "Ledger",
            issuer_tax_id=env.get("LEDGER_ISSUER_TAX_ID", ""),
            # address lines separated by "|"
            issuer_address=tuple(x.strip() for x in env.get("LEDGER_ISSUER_ADDRESS", "").split("|") if x.strip())[:4],
            issuer_email=env.get("LEDGER_ISSUER_EMAIL", ""),
        )
