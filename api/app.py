"""create_app: the Flask application around one LedgerService."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Flask, Response, g, jsonify, request
from flask_smorest import Api

from api.accounts import blp as accounts_blueprint
from api.bills import bills as bills_blueprint
from api.documents import blp as documents_blueprint
from api.errors import register_error_handlers
from api.invoices import billing as billing_blueprint
from api.invoices import invoices as invoices_blueprint
from api.invoices import payments as payments_blueprint
from api.exports import blp as exports_blueprint
from api.reminders import blp as reminders_blueprint
from commands.audit_log import reset_cause, set_cause
from service.ledger_service import LedgerService
from service.settings import Settings
from service.wire import Amount, Quantity, UnitPrice


def create_app(settings: Settings | None = None, service: LedgerService | None = None) -> Flask:
    settings = settings or (service.settings if service else Settings.from_env())
    app = Flask("ledger")
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        API_TITLE="Ledger",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep the schemas' field order
    app.extensions["ledger"] = service or LedgerService(settings)
    api = Api(app)
    for field in (Amount, Quantity, UnitPrice):
        api.register_field(field, "string", "decimal")
    for blueprint in (accounts_blueprint, invoices_blueprint, payments_blueprint, billing_blueprint, bills_blueprint,
                      exports_blueprint, documents_blueprint,
                      reminders_blueprint):
        api.register_blueprint(blueprint)
    register_error_handlers(app)  # after Api(): replaces flask-smorest's error shape with ours

    @app.before_request
    def record_cause() -> None:
        # Until the security issue brings API keys, the caller may name its key itself.
        g.cause_token = set_cause(
            kind="http", method=request.method, path=request.path,
            request_id=request.headers.get("X-Request-Id") or uuid.uuid4().hex,
            api_key_id=request.headers.get("X-Api-Key-Id"),
        )

    @app.teardown_request
    def forget_cause(_: BaseException | None) -> None:
        token = g.pop("cause_token", None)
        if token is not None:
            reset_cause(token)

    @app.get("/healthz")
    def health() -> Response:
        ledger: LedgerService = app.extensions["ledger"]
        body: dict[str, Any] = {"status": "ok", "read_model_position": ledger.projector.position}
        return jsonify(body)

    return app
