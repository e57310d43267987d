"""gunicorn settings for `ledger serve`, from the service's environment (deploy/README.md)."""

from __future__ import annotations

import os

_env = os.environ.get


def _setting(name: str, default: int, low: int, high: int) -> int:
    """A whole number within bounds; `ledger serve` imports this module before it starts the
    server, so a value out of bounds is refused there, on one line. (service/settings.py's
    int_setting does the same; the master imports this module and must not import the ledger.)"""
    raw = _env(name) or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be {low}..{high}, got {value}")
    return value


bind = _env("LEDGER_GUNICORN_BIND", "127.0.0.1:8080")
workers = _setting("LEDGER_HTTP_WORKERS", 1, 1, 64)  # `ledger serve` sets it (service/settings.py)
worker_class = "entrypoints.http_worker.LedgerWorker"
# Connections one worker holds at once (stalled ones included): a greenlet each, cheap.
worker_connections = _setting("LEDGER_HTTP_CONNECTIONS", 1000, 1, 100_000)
# Keep-alive spares a client a TCP handshake and the worker a new greenlet per request
# (bench/api.py: 1,420 -> 2,050 balance reads/s). A connection is closed after
# LEDGER_HTTP_CONNECTION_REQUESTS answers, so that clients spread over the workers again:
# connections kept for good left the benchmark's four clients on one worker in two runs of
# three, the other worker idle. 0 s turns keep-alive off (one request per connection).
# The worker's handler applies both (entrypoints/http_handler.py).
keepalive = _setting("LEDGER_HTTP_KEEPALIVE_S", 5, 0, 3600)
requests_per_connection = _setting("LEDGER_HTTP_CONNECTION_REQUESTS", 100, 1, 1_000_000)
timeout = _setting("LEDGER_HTTP_WORKER_TIMEOUT_S", 60, 1, 3600)  # a worker stuck this long is restarted
graceful_timeout = 10
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190  # the three limits of entrypoints/http_framing.py
accesslog = None
errorlog = "-"
loglevel = "warning"


# LEDGER_SERVE_SCHEDULER=true: `ledger scheduler` runs beside the workers, for a single-machine
# deployment without a cron. A process of its own: this master imports none of the ledger.
_scheduler = []


def when_ready(server):  # noqa: ANN001, ANN201 - gunicorn's hook signature
    if (_env("LEDGER_SERVE_SCHEDULER") or "").lower() in ("1", "true", "yes", "on"):
        import subprocess
        import sys

        _scheduler.append(subprocess.Popen([sys.executable, "-m", "entrypoints.cli", "scheduler"]))


def on_exit(server):  # noqa: ANN001, ANN201
    for process in _scheduler:
        process.terminate()
        process.wait(timeout=30)
