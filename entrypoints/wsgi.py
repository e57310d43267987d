"""The WSGI application (the API and the console) gunicorn's workers load (after gevent patched the standard library).
Each worker builds its own service: its own connection pool and aggregate cache; the tables
were created by `ledger serve` before the workers started."""

from __future__ import annotations

import os
from dataclasses import replace

from entrypoints.logs import configure_logging
from entrypoints.process import tune_garbage_collector
from entrypoints.web import create_web
from service.settings import Settings

configure_logging(os.environ.get("LEDGER_LOG_LEVEL") or "INFO")
app = create_web(replace(Settings.from_env(), create_tables=False))
tune_garbage_collector()
