"""The gunicorn worker `ledger serve` runs: gevent, so a client that connects and then
sends its request slowly, or not at all, holds a cheap greenlet instead of one of a few
threads (eight such clients froze the threaded server for over a minute).

Each connection's socket gets a read timeout (LEDGER_HTTP_READ_TIMEOUT_S): a request
that stops arriving is dropped after it, whatever part of it was sent. gunicorn's own
error answers (414, 431, 400 for a malformed request line, ...) are JSON in the API's
error shape, not HTML.

Imported by the gunicorn master, which must not import the ledger itself: the worker
monkey-patches the standard library after the fork, and only code imported after that
cooperates (entrypoints/wsgi.py is loaded then). psycopg then waits for its database
socket through entrypoints/green_wait.py."""

from __future__ import annotations

import json
import os
from typing import Any

from gunicorn import util
from gunicorn.workers.ggevent import GeventWorker

DEFAULT_READ_TIMEOUT_S = 10.0
MAX_READ_TIMEOUT_S = 3600.0


def read_timeout_setting(raw: str | None) -> float:
    """LEDGER_HTTP_READ_TIMEOUT_S: seconds, more than 0 and at most an hour (refused at `ledger
    serve`'s start otherwise: a socket without a limit would let stalled clients pile up)."""
    try:
        value = float(raw or DEFAULT_READ_TIMEOUT_S)
    except ValueError:
        raise ValueError(f"LEDGER_HTTP_READ_TIMEOUT_S must be a number of seconds, got {raw!r}") from None
    if not 0 < value <= MAX_READ_TIMEOUT_S:  # also refuses nan
        raise ValueError(f"LEDGER_HTTP_READ_TIMEOUT_S must be more than 0 and at most {MAX_READ_TIMEOUT_S:g}, got {raw}")
    return value
CODES = {400: "invalid_request", 403: "forbidden", 414: "uri_too_long", 417: "expectation_failed",
         431: "headers_too_large", 500: "internal_error", 501: "not_implemented"}


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    body = json.dumps({"error": {"code": CODES.get(status_int, "http_error"), "message": mesg or reason,
                                 "details": {}}}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("latin1")
    util.write_nonblock(sock, head + body)


class LedgerWorker(GeventWorker):  # type: ignore[misc]
    read_timeout_s = read_timeout_setting(os.environ.get("LEDGER_HTTP_READ_TIMEOUT_S"))

    def init_process(self) -> None:
        util.write_error = write_json_error  # gunicorn's workers answer their own errors through it
        super().init_process()

    def load_wsgi(self) -> None:
        # Patched by now (GeventWorker.init_process); the app's import is the ledger's first.
        from entrypoints import green_wait

        green_wait.install()
        super().load_wsgi()

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        # gunicorn would make the socket blocking without a limit; a gevent socket with a
        # timeout waits cooperatively and gives up after it.
        client.settimeout(self.read_timeout_s)
        super(GeventWorker, self).handle(listener, client, addr)
