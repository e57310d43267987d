"""The service as a real process on a TCP port: `ledger serve`, then plain HTTP."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from persistence.database import DatabaseConfig
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
    # JSON log lines: one access record per request, with the server's request id and the key id
    records = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    access = [r for r in records if r.get("logger") == "ledger.access"]
    assert any(r["request_id"] == balance.headers["X-Request-Id"] and r["key_id"] and r["status"] == 200
               and r["route"] == "/v1/accounts/<account_id>/balance" for r in access), access[-3:]
    metrics = requests.get(f"{server.base}/metrics", timeout=5).text
    assert 'ledger_http_requests_total{endpoint="/v1/accounts/<account_id>/usage",method="POST",status="201"} 20.0' \
        in metrics
    assert "ledger_read_model_lag_events 0.0" in metrics


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


def test_servers_started_at_once_on_an_empty_database_all_come_up(postgres_schema: DatabaseConfig, tmp_path: Path):
    env = server_env(postgres_schema.url, postgres_schema.schema)
    started = []
    for n in range(4):
        port, log_path = free_port(), tmp_path / f"serve-{n}.log"
        started.append((f"http://127.0.0.1:{port}", start_server(env, port, log_path, workers=1), log_path))
    try:
        for base, process, log_path in started:
            wait_until_ready(base, process, log_path)  # raises with the log if a start failed
    finally:
        for _, process, _ in started:
            process.terminate()
            process.wait(timeout=15)
    printed = [re.findall(r"^ldk_\S+$", log_path.read_text(), re.MULTILINE) for _, _, log_path in started]
    assert sum(len(keys) for keys in printed) == 1  # one bootstrap admin key among them


def test_a_wrong_database_address_fails_at_once_naming_host_and_port_but_not_the_password(tmp_path: Path):
    env = server_env(f"postgresql://ledger:s3cret-pw@127.0.0.1:{free_port()}/ledger", "public")
    done = subprocess.run([sys.executable, "-m", "entrypoints.cli", "serve"], env=env, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 1
    assert "127.0.0.1:" in done.stderr and "s3cret-pw" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("command", "setting", "value", "complaint"), [
    ("serve", "LEDGER_HTTP_PORT", "http", "LEDGER_HTTP_PORT must be a whole number, got 'http'"),
    ("serve", "LEDGER_HTTP_CONNECTIONS", "0", "LEDGER_HTTP_CONNECTIONS must be 1..100000, got 0"),
    ("serve", "LEDGER_HTTP_WORKER_TIMEOUT_S", "-1", "LEDGER_HTTP_WORKER_TIMEOUT_S must be 1..3600, got -1"),
    ("serve", "LEDGER_HTTP_KEEPALIVE_S", "1e3", "LEDGER_HTTP_KEEPALIVE_S must be a whole number, got '1e3'"),
    ("serve", "LEDGER_HTTP_READ_TIMEOUT_S", "nan", "LEDGER_HTTP_READ_TIMEOUT_S must be more than 0"),
    ("consume", "LEDGER_KAFKA_BATCH_MESSAGES", "0", "LEDGER_KAFKA_BATCH_MESSAGES must be 1..10000, got 0"),
    ("consume", "LEDGER_KAFKA_SECURITY_PROTOCOL", "tls", "LEDGER_KAFKA_SECURITY_PROTOCOL must be one of"),
])
def test_a_setting_that_cannot_work_is_refused_at_start_on_one_line(tmp_path: Path, command: str, setting: str,
                                                                     value: str, complaint: str):
    env = {**server_env(f"sqlite:///{tmp_path}/ledger.db", "public"), setting: value}
    done = subprocess.run([sys.executable, "-m", "entrypoints.cli", command], env=env, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 1
    assert done.stderr.startswith(f"Error: {complaint}") and "Traceback" not in done.stderr
    assert not (tmp_path / "ledger.db").exists()  # refused before anything was made


def test_url_options_reach_every_connection(postgres_schema: DatabaseConfig):
    from persistence.database import connection_options

    url = postgres_schema.url + "?application_name=ledger-test&sslmode=disable"
    options = connection_options(DatabaseConfig(url, statement_timeout_ms=1234))
    assert options == {"PGAPPNAME": "ledger-test", "PGSSLMODE": "disable", "PGOPTIONS": "-c statement_timeout=1234"}
    with pytest.raises(ValueError, match="database URL"):
        connection_options(DatabaseConfig(postgres_schema.url + "?no_such_option=1"))


def test_the_servers_own_errors_are_json(server):
    with socket.create_connection(("127.0.0.1", int(server.base.rsplit(":", 1)[1])), timeout=5) as conn:
        conn.sendall(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 414") and b"application/json" in head
    assert json.loads(body)["error"]["code"] == "uri_too_long"


def read_answer(conn: socket.socket, pending: bytes) -> tuple[bytes, bytes, bytes]:
    """(head, body, bytes after them) of one HTTP answer with a Content-Length."""
    while b"\r\n\r\n" not in pending:
        chunk = conn.recv(65536)
        assert chunk, pending
        pending += chunk
    head, _, rest = pending.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?im)^content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(rest) < length:
        chunk = conn.recv(65536)
        assert chunk, rest
        rest += chunk
    return head, rest[:length], rest[length:]


def test_a_connection_serves_requests_in_turn_until_its_limit_then_closes(server):
    """Keep-alive (LEDGER_HTTP_KEEPALIVE_S), and at most LEDGER_HTTP_CONNECTION_REQUESTS
    (default 100) answers on one connection, so that clients spread over the workers."""
    request = (b"GET /v1/keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + server.admin_key.encode()
               + b"\r\n\r\n")
    heads = []
    with socket.create_connection(("127.0.0.1", int(server.base.rsplit(":", 1)[1])), timeout=5) as conn:
        pending = b""
        for _ in range(100):
            conn.sendall(request)
            head, body, pending = read_answer(conn, pending)
            heads.append(head.lower())
            assert head.startswith(b"HTTP/1.1 200") and json.loads(body)
        assert pending == b"" and conn.recv(1) == b""  # the server closed it after the 100th
    assert not any(b"connection: close" in h for h in heads[:99])
    assert b"connection: close" in heads[99]


def test_a_hundred_stalled_clients_do_not_keep_a_normal_client_waiting(server):
    """Each stalled client sends its headers and half of its body, then nothing."""
    port = int(server.base.rsplit(":", 1)[1])
    stalled = []
    try:
        for _ in range(100):
            conn = socket.create_connection(("127.0.0.1", port), timeout=5)
            conn.sendall(b"POST /v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000\r\nAuthorization: Bearer " + server.admin_key.encode() + b"\r\n\r\n"
                         + b'{"account_id": "' + b"x" * 400)
            stalled.append(conn)
        time.sleep(0.5)  # every worker has them in hand
        slowest = 0.0
        for _ in range(5):
            started = time.monotonic()
            answered = requests.get(f"{server.base}/v1/keys", headers={"Authorization": f"Bearer {server.admin_key}"},
                                    timeout=5)
            slowest = max(slowest, time.monotonic() - started)
            assert answered.status_code == 200
        assert slowest < 1.0, slowest
    finally:
        for conn in stalled:
            conn.close()


def test_service_processes_created_at_once_on_an_empty_schema_all_start(postgres_schema: DatabaseConfig):
    """What `ledger consume`, `ledger publish-events` and `ledger serve` each do first, at once."""
    import threading

    from service.ledger_service import LedgerService
    from service.settings import Settings

    errors: list[BaseException] = []

    def start() -> None:
        try:
            LedgerService(Settings(database=postgres_schema)).close()
        except BaseException as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_url_options_are_in_effect_on_the_pooled_connections(postgres_schema: DatabaseConfig, monkeypatch):
    from service.ledger_service import LedgerService
    from service.settings import Settings

    for variable, neutral in (("PGAPPNAME", ""), ("PGOPTIONS", ""), ("PGSSLMODE", "prefer")):
        monkeypatch.setenv(variable, neutral)  # recorded, so this test's options are gone after it
    url = postgres_schema.url + "?application_name=ledger-options-test"
    config = DatabaseConfig(url, schema=postgres_schema.schema, statement_timeout_ms=4321)
    service = LedgerService(Settings(database=config))
    try:
        with service.commands.factory.datastore.get_connection() as conn:  # type: ignore[attr-defined]
            row = conn.execute("SELECT current_setting('application_name') AS app, "
                               "current_setting('statement_timeout') AS timeout").fetchone()
    finally:
        service.close()
    assert (row["app"], row["timeout"]) == ("ledger-options-test", "4321ms")
