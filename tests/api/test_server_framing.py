"""How `ledger serve` reads requests off the wire (entrypoints/http_handler.py): what it
refuses itself, in the API's JSON error shape; chunked bodies; bodies and connections that
stop arriving. Raw sockets against a real server process."""

from __future__ import annotations

import json
import os
import random
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from persistence.database import DatabaseConfig
from tests.serverproc import Server, running_server

USAGE = b'{"idempotency_key": "%s", "product": "sms", "amount": "1"}'


@pytest.fixture
def server(database: DatabaseConfig, tmp_path: Path) -> Iterator[Server]:
    settings = {"LEDGER_HTTP_READ_TIMEOUT_S": "0.5", "LEDGER_HTTP_KEEPALIVE_S": "1"}
    with running_server(database.url, database.schema, workers=1, log_path=tmp_path / "server.log",
                        extra_env=settings) as running:
        opened = requests.post(f"{running.base}/v1/accounts", headers={"Authorization": f"Bearer {running.admin_key}"},
                               json={"account_id": "wire", "billing_mode": "postpaid", "invoice_mode": "consolidated",
                                     "currency": "SGD", "credit_limit": "100"}, timeout=5)
        assert opened.status_code == 201
        yield running
    print(running.log())  # shown by pytest when the test fails


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", int(server.base.rsplit(":", 1)[1])), timeout=5)


def until_closed(conn: socket.socket) -> bytes:
    """What the server sends until it closes the connection."""
    answer = b""
    while chunk := conn.recv(65536):
        answer += chunk
    return answer


def exchange(server: Server, raw: bytes) -> tuple[bytes, bytes]:
    """(head, body) of the answer to ``raw``, read until the server closes the connection."""
    with connect(server) as conn:
        conn.sendall(raw)
        answer = until_closed(conn)
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body


def post(server: Server, headers: bytes, body: bytes = b"") -> bytes:
    return (b"POST /v1/accounts/wire/usage HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + server.admin_key.encode() + b"\r\n" + headers + b"\r\n" + body)


def chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


def expecting_invoice(server: Server) -> str:
    answer = requests.get(f"{server.base}/v1/accounts/wire/balance", timeout=5,
                          headers={"Authorization": f"Bearer {server.admin_key}"})
    return str(answer.json()["expecting_invoice"])


def test_what_the_server_refuses_itself_is_json_and_nothing_reaches_the_ledger(server):
    usage = USAGE % b"refused"
    cases = [
        (post(server, b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", chunked(usage)), 400, "invalid_request"),
        (post(server, b"Content-Length: %d\r\nContent-Length: %d\r\n" % (len(usage), len(usage)), usage), 400,
         "invalid_request"),
        (post(server, b"Content-Length: +%d\r\n" % len(usage), usage), 400, "invalid_request"),
        (post(server, b"Transfer-Encoding: gzip\r\n", usage), 501, "not_implemented"),
        (post(server, b"X-A: 1\r\n  folded\r\nContent-Length: %d\r\n" % len(usage), usage), 400, "invalid_request"),
        (post(server, b"X A: 1\r\nContent-Length: %d\r\n" % len(usage), usage), 400, "invalid_request"),
        (post(server, b"X-Big: " + b"a" * 9000 + b"\r\n"), 431, "headers_too_large"),
        (post(server, b"".join(b"X-H%d: 1\r\n" % n for n in range(101))), 431, "headers_too_large"),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (b"GET /v1/accounts/\xe9/balance HTTP/1.1\r\nHost: x\r\n\r\n", 400, "invalid_request"),
        (b"GET /livez\r\n\r\n", 400, "invalid_request"),
        (b"GET /livez HTTP/1.1\nHost: x\n\n", 400, "invalid_request"),
    ]
    for raw, status, code in cases:
        head, body = exchange(server, raw)
        assert head.startswith(b"HTTP/1.1 %d " % status), (raw[:80], head)
        assert b"content-type: application/json" in head.lower() and b"connection: close" in head.lower()
        assert json.loads(body)["error"]["code"] == code, raw[:80]
    assert expecting_invoice(server) == "0.00"
    assert "Traceback" not in server.log() and "unhandled error" not in server.log()


def test_a_chunked_body_lands_and_a_malformed_one_is_the_clients_error(server):
    head, body = exchange(server, post(server, b"Transfer-Encoding: chunked\r\n", chunked(USAGE % b"c-1")))
    assert head.startswith(b"HTTP/1.1 201 "), body
    for size in (b"zz", b"", b"-1", b"1" * 17):  # not hex, none at all, negative, too long
        head, body = exchange(server, post(server, b"Transfer-Encoding: chunked\r\n",
                                           size + b"\r\n" + USAGE % b"c-2" + b"\r\n0\r\n\r\n"))
        assert head.startswith(b"HTTP/1.1 400 ") and json.loads(body)["error"]["code"] == "invalid_input", size
        assert "malformed" in json.loads(body)["error"]["message"]
    assert expecting_invoice(server) == "-1.00"  # the chunked one only
    assert "unhandled error" not in server.log()


def test_a_body_held_back_for_100_continue_is_asked_for_only_when_the_application_reads_it(server):
    usage = USAGE % b"expect"
    expect = b"Expect: 100-continue\r\nContent-Length: %d\r\n" % len(usage)
    with connect(server) as conn:  # refused before the body is read: no "100 Continue", the connection closed
        conn.sendall(post(server, expect).replace(server.admin_key.encode(), b"wrong"))
        answer = until_closed(conn)
    assert answer.startswith(b"HTTP/1.1 401 ") and b"connection: close" in answer.lower()
    with connect(server) as conn:
        conn.sendall(post(server, expect))
        assert conn.recv(65536).startswith(b"HTTP/1.1 100 Continue")
        conn.sendall(usage)
        answer = until_closed(conn)
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:200]
    assert expecting_invoice(server) == "-1.00"


def test_a_body_that_stops_arriving_and_an_idle_connection_are_dropped_without_a_server_error(server):
    usage = USAGE % b"stalled"
    with connect(server) as conn:
        conn.sendall(post(server, b"Content-Length: %d\r\n" % len(usage), usage[:10]))
        started = time.monotonic()
        answer = until_closed(conn)
        assert time.monotonic() - started < 4  # dropped after the read timeout (0.5 s a read)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408 "), answer[:80]
    with connect(server) as conn:
        conn.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while not answer.endswith(b'"alive"}\n'):
            answer += conn.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 ") and b"connection: close" not in answer.lower()
        started = time.monotonic()
        assert conn.recv(65536) == b""  # closed by the server after the keep-alive time (1 s)
        assert 0.5 < time.monotonic() - started < 4
    assert expecting_invoice(server) == "0.00"
    assert "unhandled error" not in server.log() and "Traceback" not in server.log()


def test_a_head_trickled_a_line_at_a_time_is_dropped_after_the_read_timeout(server):
    """Each header line arrives within the read timeout (0.5 s) of the one before; the head
    as a whole does not, so the server answers 408 instead of waiting on."""
    with connect(server) as conn:
        started = time.monotonic()
        conn.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
        answered_s = None
        for n in range(30):
            if select.select([conn], [], [], 0.2)[0]:  # the server answered (or closed) meanwhile
                answered_s = time.monotonic() - started
                break
            conn.sendall(b"X-Slow-%d: 1\r\n" % n)
        answer = until_closed(conn)
    assert answered_s is not None and answered_s < 2.5, answered_s  # the trickle would have gone on 6 s
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "request_timeout"


def test_a_body_trickled_a_byte_at_a_time_is_dropped_after_its_deadline_and_a_steady_one_lands(server):
    """Each byte arrives within the read timeout (0.5 s) of the one before; the body's
    deadline (the read timeout and a second for each 8 KiB) passes long before its end. A
    body arriving faster than 8 KiB/s lands, however long it takes."""
    with connect(server) as conn:
        conn.sendall(post(server, b"Content-Length: 1000\r\n", b"{"))
        started, answered_s = time.monotonic(), None
        for _ in range(30):
            if select.select([conn], [], [], 0.2)[0]:
                answered_s = time.monotonic() - started
                break
            conn.sendall(b" ")
        answer = until_closed(conn)
    assert answered_s is not None and answered_s < 2.5, answered_s  # the trickle would have gone on 6 s
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "request_timeout"
    assert expecting_invoice(server) == "0.00"
    padded = (USAGE % b"steady")[:-1] + b" " * 32_000 + b"}"  # 32 KB at 16 KB/s: slower than one read timeout
    with connect(server) as conn:
        conn.sendall(post(server, b"Content-Length: %d\r\n" % len(padded)))
        for at in range(0, len(padded), 4_000):
            conn.sendall(padded[at:at + 4_000])
            time.sleep(0.25)
        answer = until_closed(conn)
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:300]
    assert expecting_invoice(server) == "-1.00"


def mutated(seed: bytes, rng: random.Random) -> bytes:
    """``seed`` with a few bytes inserted, deleted, replaced or cut off."""
    pieces = [b"\r\n", b"\n", b"\r", b" ", b":", b"\x00", b"\xff", b"0", b"-1", b"\t", b"\r\n\r\n", b"zz", b"%",
              b"Content-Length: 5\r\n", b"Transfer-Encoding: chunked\r\n", b"HTTP/1.1"]
    raw = bytearray(seed)
    for _ in range(rng.randint(1, 4)):
        at, roll = rng.randrange(len(raw) + 1), rng.random()
        if roll < 0.4:
            raw[at:at] = rng.choice(pieces)
        elif roll < 0.7:
            del raw[at:at + rng.randint(1, 5)]
        elif roll < 0.9:
            raw[at:at + 1] = bytes([rng.randrange(256)])
        else:
            del raw[at:]
    return bytes(raw)


def test_mutated_requests_never_answer_5xx_nor_break_the_server(server):
    """Valid requests (plain, chunked, 100-continue) with bytes inserted, deleted, replaced
    or cut off: each is answered below 500 (501 for a coding it does not serve) or, when
    nothing of a request is left, not at all. LEDGER_FUZZ_EXAMPLES sets how many."""
    usage = USAGE % b"m"
    seeds = [b"GET /v1/accounts/wire/balance HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
             + server.admin_key.encode() + b"\r\n\r\n",
             post(server, b"Content-Length: %d\r\n" % len(usage), usage),
             post(server, b"Transfer-Encoding: chunked\r\n", chunked(usage)),
             post(server, b"Expect: 100-continue\r\nContent-Length: %d\r\n" % len(usage), usage)]
    rng = random.Random(13)
    for _ in range(int(os.environ.get("LEDGER_FUZZ_EXAMPLES", "400"))):
        raw = mutated(rng.choice(seeds), rng)
        with connect(server) as conn:
            conn.sendall(raw)
            conn.shutdown(socket.SHUT_WR)
            answer = until_closed(conn)
        status = int(answer[9:12]) if answer.startswith(b"HTTP/1.1 ") else None
        assert status is not None or not raw.strip(), (raw[:200], answer[:200])
        assert status is None or status < 500 or status == 501, (raw[:200], answer[:300])
    assert requests.get(f"{server.base}/livez", timeout=5).status_code == 200
    assert "Traceback" not in server.log() and "unhandled error" not in server.log()
