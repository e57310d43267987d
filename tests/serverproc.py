"""`ledger serve` as a real process on a free port, for tests and benchmarks that need TCP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 30
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_postgres_database(name: str, server: str | None = None) -> str:
    server = server or os.environ.get("LEDGER_BENCH_DATABASE_URL") or LOCAL_POSTGRES
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlparse(server)._replace(path=f"/{name}").geturl()


@dataclass
class Server:
    base: str
    admin_key: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def server_env(url: str, schema: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "LEDGER_DATABASE_URL": url, "LEDGER_DATABASE_SCHEMA": schema,
            "PYTHONPATH": str(ROOT), **extra}


def create_key(env: dict[str, str], role: str, *accounts: str) -> str:
    """`ledger keys create`; the secret is the last line it prints."""
    args = [sys.executable, "-m", "entrypoints.cli", "keys", "create", "--role", role, "--name", f"test {role}"]
    for account in accounts:
        args += ["--account", account]
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def start_server(env: dict[str, str], port: int, log_path: Path, workers: int,
                 new_session: bool = False) -> subprocess.Popen[bytes]:
    """``new_session``: the server and its workers form a process group a test can kill at once."""
    log = open(log_path, "ab")  # a file, not a pipe: a full pipe would stall the server
    try:
        return subprocess.Popen([sys.executable, "-m", "entrypoints.cli", "serve", "--port", str(port),
                                 "--workers", str(workers)], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=new_session)
    finally:
        log.close()


def wait_until_ready(base: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass  # not listening yet, or its workers are still starting
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(log_path.read_text(errors="replace"))
        time.sleep(0.1)


@contextmanager
def running_server(url: str, schema: str, *, workers: int = 2, log_path: Path,
                   extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = server_env(url, schema, **(extra_env or {}))
    admin_key = create_key(env, "admin")
    port = free_port()
    process = start_server(env, port, log_path, workers)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base, process, log_path)
        yield Server(base, admin_key, process, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
