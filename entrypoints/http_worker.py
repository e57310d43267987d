"""The gunicorn worker `ledger serve` runs: gevent, so a client that connects and then
sends its request slowly, or not at all, holds a cheap greenlet instead of one of a few
threads (eight such clients froze the threaded server for over a minute).

gevent's WSGI server reads the requests (gunicorn's gevent_pywsgi worker), with the
ledger's rules: strict framing, read and keep-alive timeouts, a limit of answers a
connection, JSON errors (entrypoints/http_handler.py).

Imported by the gunicorn master, which must not import the ledger itself: the worker
monkey-patches the standard library after the fork, and only code imported after that
cooperates (entrypoints/wsgi.py is loaded then). psycopg then waits for its database
socket through entrypoints/green_wait.py."""

from __future__ import annotations

import os

from gunicorn.workers.ggevent import GeventPyWSGIWorker, PyWSGIServer

from entrypoints.http_framing import Limits
from entrypoints.http_handler import LedgerHandler

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


class LedgerServer(PyWSGIServer):  # type: ignore[misc]
    # One connection per accept: with several workers on one socket, a worker that takes
    # what is pending leaves the others idle (gunicorn does the same for its own workers).
    max_accept = 1


class LedgerWorker(GeventPyWSGIWorker):  # type: ignore[misc]
    server_class = LedgerServer
    wsgi_handler = LedgerHandler
    read_timeout_s = read_timeout_setting(os.environ.get("LEDGER_HTTP_READ_TIMEOUT_S"))  # checked on import

    def init_process(self) -> None:
        from entrypoints import gunicorn_conf  # the master loaded it; its values are the settings

        LedgerHandler.limits = Limits(self.cfg.limit_request_line, self.cfg.limit_request_fields,
                                      self.cfg.limit_request_field_size)
        LedgerHandler.read_timeout_s = self.read_timeout_s
        LedgerHandler.keepalive_s = float(self.cfg.keepalive)
        LedgerHandler.requests_per_connection = gunicorn_conf.requests_per_connection
        super().init_process()

    def load_wsgi(self) -> None:
        # Patched by now (GeventWorker.init_process); the app's import is the ledger's first.
        from entrypoints import green_wait

        green_wait.install()
        super().load_wsgi()
