"""One client connection of `ledger serve`: gevent's WSGI handler (gunicorn's gevent_pywsgi
worker, about 50 us of CPU a request cheaper than gunicorn's own gevent worker: balance
reads with four clients 1,724-1,781 -> 1,970-1,987/s, p99 5.2-5.3 -> 4.2-4.5 ms) with the
rules gunicorn's parser kept before it:

- requests are read strictly (entrypoints/http_framing.py) and what the server refuses
  itself is answered in the API's JSON error shape;
- each read waits at most LEDGER_HTTP_READ_TIMEOUT_S, a request's head arrives whole within
  it, its body within it and a second more for each 8 KiB, and a kept-alive connection idles
  at most the keep-alive time between requests: stalled and trickling clients are dropped,
  never waited for;
- a connection is closed after LEDGER_HTTP_CONNECTION_REQUESTS answers, so that clients
  spread over the workers again;
- the body reaches the application through a guard: a malformed chunk, a body that stops
  arriving or a client that goes away is the client's error (400, 408), never a 500, and
  the connection is closed after it; a body the application left unread is drained up to
  64 KiB, else the connection is closed instead of reading on.
"""

from __future__ import annotations

import json
import logging
from time import monotonic
from typing import Any

from gevent import Timeout
from gevent.pywsgi import OldMessage, _InvalidClientInput
from gunicorn.workers.ggevent import PyWSGIHandler
from werkzeug.exceptions import BadRequest, ClientDisconnected, RequestTimeout

from entrypoints.http_framing import Limits, Refused, body_framing, header_fields, request_line

log = logging.getLogger("ledger.http")

CODES = {400: "invalid_request", 408: "request_timeout", 414: "uri_too_long", 431: "headers_too_large",
         500: "internal_error", 501: "not_implemented"}
REASONS = {400: "Bad Request", 408: "Request Timeout", 414: "URI Too Long", 431: "Request Header Fields Too Large",
           500: "Internal Server Error", 501: "Not Implemented"}
MAX_DRAIN_BYTES = 64 * 1024  # as gunicorn's: a slow but steady sender cannot hold the connection
MIN_BODY_BYTES_PER_S = 8 * 1024  # what a body must average past the read timeout (the default 64 KiB: 18 s)
# The body is read in pieces this small, so that the deadline credits what arrives soon after
# it arrives: a piece waits for all its bytes, and a piece of 8 KiB at the least rate took a
# whole second, longer than a short read timeout allows the first one.
BODY_PIECE_BYTES = 1024


def error_body(status: int, message: str) -> bytes:
    return json.dumps({"error": {"code": CODES.get(status, "http_error"), "message": message, "details": {}}}).encode()


def error_answer(status: int, message: str) -> bytes:
    """A whole answer, head and body, that closes the connection."""
    body = error_body(status, message)
    head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


class HeadTimeout(TimeoutError):
    """The request line and headers did not all arrive within the read timeout."""


class GuardedBody:
    """wsgi.input: gevent's reader of the body, whose transport errors become the client's,
    read within a deadline: the read timeout, plus a second for each MIN_BODY_BYTES_PER_S
    received. Each read of the socket waits at most the read timeout; without the deadline a
    client sending a byte now and then would hold its connection for good."""

    def __init__(self, stream: Any, handler: LedgerHandler) -> None:
        self.stream, self.handler = stream, handler
        self.started_s: float | None = None
        self.received_bytes = 0

    def _within_deadline(self, read: Any, *args: Any) -> Any:
        now_s, timeout_s = monotonic(), self.handler.read_timeout_s
        if self.started_s is None:
            self.started_s = now_s
        left_s = self.started_s + timeout_s + self.received_bytes / MIN_BODY_BYTES_PER_S - now_s
        if left_s <= 0:
            raise TimeoutError("the request body arrives too slowly")
        with Timeout(left_s, TimeoutError):  # only the body's reading runs meanwhile
            data = read(*args)
        self.received_bytes += len(data) if isinstance(data, bytes) else sum(map(len, data))
        return data

    def _guarded(self, read: Any, *args: Any) -> Any:
        try:
            return self._within_deadline(read, *args)
        except (_InvalidClientInput, ValueError) as error:  # ValueError: gevent's reading of an empty chunk size
            self.handler.close_connection = True
            raise BadRequest(f"the request body is malformed: {error}") from None
        except TimeoutError:
            self.handler.close_connection = True
            raise RequestTimeout("the request body stopped arriving, or arrives too slowly") from None
        except OSError:
            self.handler.close_connection = True
            raise ClientDisconnected() from None

    def read(self, length: int | None = None) -> bytes:
        wanted = None if length is None or length < 0 else length
        pieces: list[bytes] = []
        while wanted is None or wanted > 0:
            piece = self._guarded(self.stream.read, BODY_PIECE_BYTES if wanted is None
                                  else min(BODY_PIECE_BYTES, wanted))
            if not piece:
                break
            pieces.append(piece)
            if wanted is not None:
                wanted -= len(piece)
        return b"".join(pieces)

    def readline(self, size: int | None = None) -> bytes:
        return self._guarded(self.stream.readline, size)  # type: ignore[no-any-return]

    def readlines(self, hint: int | None = None) -> list[bytes]:
        return self._guarded(self.stream.readlines, hint)  # type: ignore[no-any-return]

    @property
    def held_back(self) -> bool:
        """The client still waits for "100 Continue" before it sends the body (gevent's reader
        keeps the socket to send it on until the first read)."""
        return getattr(self.stream, "socket", None) is not None

    def __iter__(self) -> GuardedBody:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def _discard(self) -> None:
        """Called by gevent once the application has answered: reads what it left of the
        body, so that the next request on the connection starts where it should."""
        if self.held_back:
            # Asking for a body the application did not want would be wrong, and so would
            # guessing where the next request starts.
            self.handler.close_connection = True
            return
        stream = self.stream
        if not stream.chunked_input and stream.position >= (stream.content_length or 0):
            return  # read to its end, or none sent
        drained = 0
        try:
            while drained <= MAX_DRAIN_BYTES:
                chunk = self._within_deadline(self.stream.read, BODY_PIECE_BYTES)
                if not chunk:
                    return
                drained += len(chunk)
        except (OSError, ValueError):  # malformed (_InvalidClientInput is an OSError), too slow, or gone
            pass
        self.handler.close_connection = True


class LedgerHandler(PyWSGIHandler):  # type: ignore[misc]
    # Set by the worker from its settings (entrypoints/http_worker.py).
    limits = Limits()
    read_timeout_s = 10.0
    keepalive_s = 5.0
    requests_per_connection = 100
    head_deadline: Timeout | None = None

    def handle(self) -> None:
        self.requests_read = 0
        self.socket.settimeout(self.read_timeout_s)
        try:
            super().handle()
        except OSError:  # the client went away while an answer was being sent
            pass

    def read_requestline(self) -> str:
        # Waiting for a request: up to the read timeout for the first, the keep-alive time
        # between two on one connection.
        self.socket.settimeout(self.keepalive_s if self.requests_read else self.read_timeout_s)
        try:
            self.rfile.peek(1)
        finally:
            if self.socket is not None:
                self.socket.settimeout(self.read_timeout_s)
        # From its first byte on, the whole head (request line and headers) must arrive within
        # the read timeout: a client trickling it a byte at a time, each read in time, would
        # otherwise hold its connection for good.
        self.head_deadline = Timeout(self.read_timeout_s, HeadTimeout)
        self.head_deadline.start()
        return super().read_requestline()  # type: ignore[no-any-return]

    def read_request(self, raw_requestline: str) -> bool:
        request_line(raw_requestline, self.limits)
        super().read_request(raw_requestline)  # the header block through MessageClass
        self.head_deadline.close()
        self.requests_read += 1
        if self.requests_read >= self.requests_per_connection or not self.keepalive_s:
            self.close_connection = True
        return True

    def MessageClass(self, fp: Any, *_: Any) -> Any:  # gevent names it so
        fields = header_fields(fp, self.limits)
        body_framing(fields)
        message = OldMessage()
        for name, value in fields:
            message[name] = value
        return message

    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        # Also for an "upgrade" request (gevent would hand it the raw socket): none is served.
        self.wsgi_input = GuardedBody(self.wsgi_input, self)
        environ["wsgi.input"], environ["wsgi.input_terminated"] = self.wsgi_input, True
        return environ  # type: ignore[no-any-return]

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if isinstance(self.wsgi_input, GuardedBody) and self.wsgi_input.held_back:
            self.close_connection = True  # answered without the body the client holds back (Expect: 100-continue)
        # gevent says "Connection: close" on HTTP/1.0 only; clients of 1.1 need it too.
        if self.close_connection and not any(name.lower() == "connection" for name, _ in headers):
            headers = [*headers, ("Connection", "close")]
        return super().start_response(status, headers, exc_info)

    def handle_one_request(self) -> Any:
        try:
            answer = super().handle_one_request()
        finally:
            if self.head_deadline is not None:
                self.head_deadline.close()
        if isinstance(answer, tuple) and answer[0] == "414":  # gevent's own check, past 8,192 bytes
            return "414", error_answer(414, f"the request line is longer than {self.limits.request_line_bytes} bytes")
        return answer

    def _handle_client_error(self, error: Exception) -> tuple[str, bytes]:
        if isinstance(error, Refused):
            status, message = error.status, error.message
        elif isinstance(error, TimeoutError):
            status, message = 408, f"the request stopped arriving for {self.read_timeout_s:g} s"
        else:  # gevent's own checks, or the connection broke
            status, message = 400, f"malformed request: {str(error)[:200]}"
        log.warning("refused a request from %s: %s %s", self.client_address, status, message)
        self.close_connection = True
        return str(status), error_answer(status, message)

    def _send_error_response_if_possible(self, error_code: int) -> None:
        """gevent's last resort (the application raised past its own error handling, or the
        body broke after the application had answered), in the API's error shape."""
        if self.response_length:
            self.close_connection = True
            return
        body = error_body(error_code, "the server could not complete the request")
        try:
            self.start_response(f"{error_code} {REASONS.get(error_code, 'Error')}", [
                ("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("Connection", "close")])
            self.write(body)
        except OSError:
            self.close_connection = True

    def log_request(self) -> None:
        """Nothing: the application writes one access record per request (api/request_log.py)."""
