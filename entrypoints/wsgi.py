"""The WSGI application gunicorn's workers load (after gevent patched the standard library).
Each worker builds its own service: its own connection pool and aggregate cache; the tables
were created by `ledger serve` before the workers started."""

from __future__ import annotations

from dataclasses import replace

from api.app import create_app
from service.settings import Settings

app = create_app(replace(Settings.from_env(), create_tables=False))
