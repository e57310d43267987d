"""Logging for every `ledger` command: JSON lines by default (LEDGER_LOG_FORMAT=text for
people at a terminal), each with the request id and key id of the HTTP request it belongs
to when there is one (api/request_log.py adds them)."""

from __future__ import annotations

import logging
import os

from pythonjsonlogger.json import JsonFormatter

JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(level: str = "INFO", fmt: str | None = None) -> None:
    chosen = (fmt or os.environ.get("LEDGER_LOG_FORMAT") or "json").lower()
    handler = logging.StreamHandler()
    if chosen == "json":
        handler.setFormatter(JsonFormatter(JSON_FIELDS, rename_fields={"asctime": "time", "levelname": "level",
                                                                       "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
