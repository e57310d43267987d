"""The service as a real process on a TCP port: `ledger serve`, then plain HTTP."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from commands.persistence import DatabaseConfig
from tests.serverproc import Server, free_port, running_server, server_env, start_server, wait_until_ready


@pytest.fixture
def server(database: DatabaseConfig, tmp_path: Path) -> Iterator[Server]:
    with running_server(database.url, database.schema, workers=2, log_path=tmp_path / "server.log") as running:
        yield running
    print(running.log())  # shown by pytest when the test fails


def test_a_new_account_answers_its_balance_over_real_http(server):
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {server.admin_key}"
    opened = http.post(f"{server.base}/v1/accounts", json={
        "account_id": "tcp-1", "billing_mode": "postpaid", "invoice_mode": "consolidated", "currency": "EUR",
        "credit_limit": "500"}, timeout=5)
    assert opened.status_code == 201
    for i in range(20):  # spread over both worker processes, each with its own cache
        posted = http.post(f"{server.base}/v1/accounts/tcp-1/usage", json={
            "idempotency_key": f"u{i}", "product": "sms", "quantity": "3", "unit_price": "0.0333335"}, timeout=5)
        assert posted.status_code == 201, posted.text
    balance = http.get(f"{server.base}/v1/accounts/tcp-1/balance", timeout=5)
    assert balance.status_code == 200
    assert balance.headers["Content-Type"] == "application/json"
    body = balance.json()
    assert (body["expecting_invoice"], body["usable_credits"], body["version"]) == ("-2.00", "498.00", 21)
    too_big = http.post(f"{server.base}/v1/accounts/tcp-1/recharges", data=b"{" + b" " * 70_000 + b"}",
                        headers={"Content-Type": "application/json"}, timeout=5)
    assert too_big.status_code == 413
    assert too_big.json()["error"]["code"] == "request_too_large"
    anonymous = requests.get(f"{server.base}/v1/accounts/tcp-1/balance", timeout=5)
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "unauthenticated")
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")


def test_serve_on_an_empty_ledger_prints_one_admin_key_once(database: DatabaseConfig, tmp_path: Path):
    env = server_env(database.url, database.schema)
    keys = []
    for run in range(2):
        port, log_path = free_port(), tmp_path / f"serve-{run}.log"
        process = start_server(env, port, log_path, workers=1)
        try:
            wait_until_ready(f"http://127.0.0.1:{port}", process, log_path)
        finally:
            process.terminate()
            process.wait(timeout=15)
        keys.append(re.findall(r"^ldk_\S+$", log_path.read_text(), re.MULTILINE))
    assert len(keys[0]) == 1 and keys[1] == []  # the second start finds a key and prints none
    listed = subprocess.run([sys.executable, "-m", "entrypoints.cli", "keys", "list"], env=env,
                            capture_output=True, text=True, check=True).stdout
    assert '"role": "admin"' in listed and keys[0][0] not in listed  # listed, never with its secret
