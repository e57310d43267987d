"""The `ledger` command: serve the HTTP API and run the ledger's scheduled chores."""

from __future__ import annotations

import json
from dataclasses import replace
import os
import logging
from typing import Any

import click
from gunicorn.app.base import BaseApplication

from service.ledger_service import LedgerService
from service.settings import Settings


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        # Each worker builds its own service (its own connection pool and aggregate cache).
        from api.app import create_app

        return create_app(replace(Settings.from_env(), create_tables=False))


@click.group()
@click.option("--log-level", default="INFO", show_default=True)
def main(log_level: str) -> None:
    """Event-sourced accounting ledger."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")


@main.command()
@click.option("--host", default=None, help="Interface to bind [LEDGER_HTTP_HOST, default 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port [LEDGER_HTTP_PORT, default 8080].")
@click.option("--workers", type=int, default=None, help="Processes [LEDGER_HTTP_WORKERS].")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the HTTP API (gunicorn, threaded workers)."""
    settings = Settings.from_env()
    host = host or settings.http_host
    port = port or settings.http_port
    # Create the tables once, before workers start, so they never race to create them.
    LedgerService(settings).close()
    click.echo(f"ledger: serving on http://{host}:{port} (database {settings.database.url})", err=True)
    _Gunicorn({
        "bind": f"{host}:{port}",
        "workers": workers or settings.http_workers,
        "worker_class": "gthread",
        "threads": settings.http_threads,
        # A gthread worker otherwise keeps accepting keep-alive connections, and one process
        # (one core, one GIL) ends up serving every client while the others idle (measured:
        # one worker at 91% CPU, the rest idle). Closing each connection after its response
        # and taking no more connections than threads lets the kernel spread the load.
        "worker_connections": settings.http_threads,
        "keepalive": 0,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "timeout": 30,
        "graceful_timeout": 10,
    }).run()


@main.command("expire-reservations")
def expire_reservations() -> None:
    """Release every hold whose expires_at has passed (run it from a scheduler)."""
    service = LedgerService(Settings.from_env())
    try:
        expired = service.expire_due_reservations()
    finally:
        service.close()
    click.echo(json.dumps({"expired": expired, "count": sum(len(v) for v in expired.values())}))


@main.command("catch-up")
def catch_up() -> None:
    """Apply every event not yet in the read models (after a bulk import, say)."""
    service = LedgerService(Settings.from_env())
    try:
        before = service.projector.position
        after = service.projector.catch_up()
    finally:
        service.close()
    click.echo(json.dumps({"from_position": before, "to_position": after}))


if __name__ == "__main__":
    main()
