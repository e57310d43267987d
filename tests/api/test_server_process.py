"""The service as a real process on a TCP port: `ledger serve`, then plain HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests

from commands.persistence import DatabaseConfig

STARTUP_TIMEOUT_S = 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(database: DatabaseConfig, tmp_path) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "LEDGER_DATABASE_URL": database.url, "LEDGER_DATABASE_SCHEMA": database.schema,
           "LEDGER_HTTP_WORKERS": "2"}
    log = open(tmp_path / "server.log", "wb")  # a file, not a pipe: a full pipe would stall the server
    process = subprocess.Popen([sys.executable, "-m", "entrypoints.cli", "serve", "--port", str(port)],
                               env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    try:
        while True:
            try:
                requests.get(f"{base}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp_path / "server.log").read_text())
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()
        print((tmp_path / "server.log").read_text())  # shown by pytest when the test fails


def test_a_new_account_answers_its_balance_over_real_http(server):
    opened = requests.post(f"{server}/v1/accounts", json={
        "account_id": "tcp-1", "billing_mode": "postpaid", "invoice_mode": "consolidated", "currency": "EUR",
        "credit_limit": "500"}, timeout=5)
    assert opened.status_code == 201
    for i in range(20):  # spread over both worker processes, each with its own cache
        posted = requests.post(f"{server}/v1/accounts/tcp-1/usage", json={
            "idempotency_key": f"u{i}", "product": "sms", "quantity": "3", "unit_price": "0.0333335"}, timeout=5)
        assert posted.status_code == 201, posted.text
    balance = requests.get(f"{server}/v1/accounts/tcp-1/balance", timeout=5)
    assert balance.status_code == 200
    assert balance.headers["Content-Type"] == "application/json"
    body = balance.json()
    assert (body["expecting_invoice"], body["usable_credits"], body["version"]) == ("-2.00", "498.00", 21)
    too_big = requests.post(f"{server}/v1/accounts/tcp-1/recharges", data=b"{" + b" " * 70_000 + b"}",
                            headers={"Content-Type": "application/json"}, timeout=5)
    assert too_big.status_code == 413
    assert too_big.json()["error"]["code"] == "request_too_large"
