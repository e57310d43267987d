"""Real databases for the tests.

PostgreSQL: ``LEDGER_TEST_DATABASE_URL`` when set, else the local server at
127.0.0.1:5432, else a throwaway cluster started here from the PostgreSQL binaries.
Each test gets a schema of its own (dropped afterwards); SQLite tests get a file.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psycopg
import pytest

from ledger_core.commands import IssueKey
from persistence.database import DatabaseConfig
from service.ledger_service import LedgerService
from service.settings import Settings

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
TEST_DATABASE = "ledger_test"


def _reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_throwaway_cluster(folder: Path) -> tuple[str, Callable[[], None]]:
    initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb") or ""]
    if not initdb[-1]:
        raise RuntimeError("no PostgreSQL server reachable and no initdb found to start one")
    bin_dir = Path(initdb[-1]).parent
    data, port = folder / "pgdata", _free_port()
    # PostgreSQL refuses to run as root: run it as the postgres system user then.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder.mkdir(parents=True, exist_ok=True)
    if as_user:
        shutil.chown(folder, "postgres")
    subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
                   check=True, capture_output=True)
    subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(folder / "log"),
                    "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                   check=True, capture_output=True)

    def stop() -> None:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)

    return f"postgresql://postgres@127.0.0.1:{port}/postgres", stop


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A URL of a database the tests may fill: one per test session."""
    server = os.environ.get("LEDGER_TEST_DATABASE_URL")
    stop: Callable[[], None] | None = None
    if not server:
        if _reachable(LOCAL_POSTGRES):
            server = LOCAL_POSTGRES
        else:
            server, stop = _start_throwaway_cluster(Path(tempfile.mkdtemp(prefix="ledger-pg-")))
    try:
        with psycopg.connect(server, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (TEST_DATABASE,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{TEST_DATABASE}"')
        yield urlparse(server)._replace(path=f"/{TEST_DATABASE}").geturl()
    finally:
        if stop:
            stop()


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[DatabaseConfig]:
    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield DatabaseConfig(postgres_url, schema=schema, pool_size=4)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


class FakeClock:
    """The time commands see (expiry, settle); moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> DatabaseConfig:
    if request.param == "sqlite":
        return DatabaseConfig(f"sqlite:///{tmp_path}/ledger.db")
    return request.getfixturevalue("postgres_schema")


@pytest.fixture
def service(database: DatabaseConfig, clock: FakeClock) -> Iterator[LedgerService]:
    svc = LedgerService(Settings(database=database), clock=clock)
    try:
        yield svc
    finally:
        svc.close()


@pytest.fixture
def app(service: LedgerService) -> Any:
    from api.app import create_app

    # No rate limit here: the fuzzer alone sends hundreds a second (test_rate_limits.py has its own)
    flask_app = create_app(replace(service.settings, rate_limit="off"), service=service)
    flask_app.testing = True
    return flask_app


def client_with_key(app: Any, secret: str | None) -> Any:
    """A test client that sends ``secret`` as its bearer token on every request."""
    test_client = app.test_client()
    if secret is not None:
        test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
    return test_client


@pytest.fixture
def key_for(service: LedgerService) -> Callable[..., str]:
    """Issues a key: key_for("finance", "acme") -> its secret."""
    return lambda role, *accounts: service.commands.handle(IssueKey(role, accounts=accounts or None)).secret


@pytest.fixture
def client(app: Any, key_for: Callable[..., str]) -> Any:
    """Flask's test client around the test's service, with an admin key."""
    return client_with_key(app, key_for("admin"))


@pytest.fixture
def run_cli(database: DatabaseConfig, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Runs `ledger ARGS...` in-process against the test's database."""
    from click.testing import CliRunner

    from entrypoints.cli import main

    monkeypatch.setenv("LEDGER_DATABASE_URL", database.url)
    monkeypatch.setenv("LEDGER_DATABASE_SCHEMA", database.schema)
    runner = CliRunner()
    return lambda *args: runner.invoke(main, list(args))
