"""A bank over real HTTP on PostgreSQL: several server processes, clients that collide on
few accounts and retry with idempotency keys, and kill -9 of the whole server under load.
Every answer is a 2xx or a documented 4xx, never a 5xx, and every account's figures equal
what the ledger acknowledged: nothing lost, nothing booked twice (bench/bank.py runs the
same check longer)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from persistence.database import DatabaseConfig
from tests.loadgen import run_bank
from tests.serverproc import create_key, free_port, running_server, server_env, start_server, wait_until_ready

pytestmark = pytest.mark.postgres
BANK_SECONDS = float(os.environ.get("LEDGER_BANK_SECONDS", "20"))
MIN_KILLS = 3


def test_two_server_processes_under_colliding_load_answer_no_5xx_and_the_books_add_up(
        postgres_schema: DatabaseConfig, tmp_path: Path):
    with running_server(postgres_schema.url, postgres_schema.schema, workers=2,
                        log_path=tmp_path / "server.log") as server:
        report = run_bank(server.base, server.admin_key, accounts=20, threads=8, seconds=BANK_SECONDS)
    print(report.summary())
    assert report.operations > 500
    assert report.server_errors == 0, report.summary()
    assert not report.undocumented, report.summary()
    assert not report.mismatches, report.summary()


def combined_batches(base: str) -> int:
    """Batches of two or more writes the server saved together, from its /metrics."""
    text = requests.get(f"{base}/metrics", timeout=10).text
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("ledger_group_commit_batch"))
    return int(float(samples["ledger_group_commit_batch_commands_count"])
               - float(samples['ledger_group_commit_batch_commands_bucket{le="1.0"}']))


def test_kill_9_of_the_server_under_load_loses_nothing_acknowledged_and_books_nothing_twice(
        postgres_schema: DatabaseConfig, tmp_path: Path):
    """Group commit on, its leader waiting 2 ms for more: most kills land while a combined
    batch is being decided or saved. What it stored is all or nothing: answered writes are in
    the books once, unanswered ones are retried with their keys and land once."""
    env = server_env(postgres_schema.url, postgres_schema.schema, LEDGER_GROUP_COMMIT_WAIT_US="2000")
    key = create_key(env, "admin")
    port, log_path = free_port(), tmp_path / "server.log"
    base = f"http://127.0.0.1:{port}"
    servers: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        servers.append(start_server(env, port, log_path, workers=2, new_session=True))
        wait_until_ready(base, servers[-1], log_path)

    kills = 0

    def kill_now_and_then(deadline: float) -> None:
        nonlocal kills
        # At least MIN_KILLS however long a restart takes (on a slow machine two fitted in
        # the time); the clients keep sending until this returns.
        while kills < MIN_KILLS or time.monotonic() < deadline - 3:
            time.sleep(2.5)
            os.killpg(servers[-1].pid, signal.SIGKILL)  # the master and its workers, mid-request
            servers[-1].wait()
            kills += 1
            time.sleep(0.5)
            start()

    start()
    try:
        report = run_bank(base, key, accounts=10, threads=8, seconds=BANK_SECONDS, meanwhile=kill_now_and_then)
        combined = combined_batches(base)
    finally:
        os.killpg(servers[-1].pid, signal.SIGTERM)
        servers[-1].wait(timeout=20)
    print(f"kills {kills}; combined batches in the last server {combined}; {report.summary()}")
    assert kills >= MIN_KILLS
    assert combined > 0
    assert report.retries > 0  # some answers were lost to the kills and retried
    assert report.server_errors == 0, report.summary()
    assert not report.mismatches, report.summary()
