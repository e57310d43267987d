"""What `ledger serve` answers: the API at /, the billing console at /console, on one
LedgerService per process. `GET /` (a person's browser, not an API client) is sent to the
console."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from api.app import create_app
from console.app import create_console
from service.ledger_service import LedgerService
from service.settings import Settings

CONSOLE_PATH = "/console"


class Web:
    """The WSGI application: the API, with the console mounted beside it."""

    def __init__(self, api: Flask, console: Flask) -> None:
        self.api, self.console = api, console
        self._dispatch = DispatcherMiddleware(api, {CONSOLE_PATH: console})

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") in ("", "/") and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            start_response("302 Found", [("Location", f"{CONSOLE_PATH}/"), ("Content-Length", "0")])
            return [b""]
        return self._dispatch(environ, start_response)


def create_web(settings: Settings | None = None, service: LedgerService | None = None) -> Web:
    api = create_app(settings, service)
    ledger: LedgerService = api.extensions["ledger"]
    return Web(api, create_console(ledger, settings or ledger.settings))
