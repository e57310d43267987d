"""gunicorn settings for `ledger serve`, from the service's environment (deploy/README.md)."""

from __future__ import annotations

import os

_env = os.environ.get
bind = _env("LEDGER_GUNICORN_BIND", "127.0.0.1:8080")
workers = int(_env("LEDGER_HTTP_WORKERS") or 1)
worker_class = "entrypoints.http_worker.LedgerWorker"
# Connections one worker holds at once (stalled ones included): a greenlet each, cheap.
worker_connections = int(_env("LEDGER_HTTP_CONNECTIONS") or 1000)
# No keep-alive: a connection serves one request, so the kernel spreads new connections
# over the workers instead of one worker keeping every busy client.
keepalive = 0
timeout = int(_env("LEDGER_HTTP_WORKER_TIMEOUT_S") or 60)  # a worker stuck this long is restarted
graceful_timeout = 10
limit_request_line = 8190
limit_request_fields = 100
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
