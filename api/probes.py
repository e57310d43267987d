"""Probes for orchestrators: /livez (the process answers) and /readyz (it can serve).

Liveness never touches the database: a database outage must make pods unready, not
restart them all. Readiness asks the database two cheap questions within a short bound
(a pool waiting for a connection would otherwise hold the probe for its own timeout)."""

from __future__ import annotations

import concurrent.futures
from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from api.auth import public
from service.ledger_service import LedgerService

READY_TIMEOUT_S = 2.0
_checks = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="readyz")

blp = Blueprint("probes", __name__)


def _positions(ledger: LedgerService) -> tuple[int, int]:
    return ledger.commands.recorder.max_notification_id() or 0, ledger.projector.position


@blp.get("/livez")
@public
def livez() -> Response:
    return jsonify({"status": "alive"})


@blp.get("/readyz")
@blp.get("/healthz")  # the older name, kept for existing monitors
@public
def readyz() -> Any:
    ledger: LedgerService = current_app.extensions["ledger"]
    try:
        log_position, read_model_position = _checks.submit(_positions, ledger).result(timeout=READY_TIMEOUT_S)
    except concurrent.futures.TimeoutError:
        return _unready(f"the database did not answer within {READY_TIMEOUT_S:g} s")
    except Exception as error:  # any failure to reach it: unready, with the reason, never a 500
        return _unready(f"the database is not reachable: {type(error).__name__}")
    lag = log_position - read_model_position
    body = {"status": "ready", "log_position": log_position, "read_model_position": read_model_position,
            "read_model_lag_events": lag}
    if lag > ledger.settings.ready_max_lag_events:
        return _unready(f"the read model is {lag} events behind (limit {ledger.settings.ready_max_lag_events})",
                        body)
    return jsonify(body)


def _unready(reason: str, body: dict[str, Any] | None = None) -> tuple[Response, int, dict[str, str]]:
    return jsonify({**(body or {}), "status": "unavailable", "reason": reason}), 503, {"Retry-After": "5"}
