"""create_app: the Flask application around one LedgerService."""

from __future__ import annotations

import time
import uuid

from flask import Flask, Response, g, request
from flask_smorest import Api

from api.accounts import blp as accounts_blueprint
from api.auth import authorize, document_access
from api.bills import bills as bills_blueprint
from api.documents import blp as documents_blueprint
from api.errors import ErrorSchema, register_error_handlers
from api.exports import blp as exports_blueprint
from api.invoices import billing as billing_blueprint
from api.invoices import invoices as invoices_blueprint
from api.invoices import payments as payments_blueprint
from api.keys import blp as keys_blueprint
from api.metrics import blp as metrics_blueprint
from api.metrics import instrument
from api.orders import all_orders as all_orders_blueprint
from api.orders import blp as orders_blueprint
from api.payer_profiles import blp as payer_profiles_blueprint
from api.probes import blp as probes_blueprint
from api.rate_limits import RateLimits
from api.reminders import blp as reminders_blueprint
from api.request_log import log_requests
from api.subscriptions import all_subscriptions as all_subscriptions_blueprint
from api.subscriptions import plans as plans_blueprint
from api.subscriptions import subscriptions as subscriptions_blueprint
from api.test_clocks import blp as test_clocks_blueprint
from ledger_core.errors import UnsafeText
from ledger_core.text import unsafe_character
from persistence.appending import reset_cause, set_cause
from service.ledger_service import LedgerService
from service.settings import Settings
from service.wire import Amount, Quantity, UnitPrice


def create_app(settings: Settings | None = None, service: LedgerService | None = None) -> Flask:
    settings = settings or (service.settings if service else Settings.from_env())
    app = Flask("ledger", static_folder=None)
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
    api = LedgerApi(app)
    for field in (Amount, Quantity, UnitPrice):
        api.register_field(field, "string", "decimal")
    for blueprint in (accounts_blueprint, invoices_blueprint, payments_blueprint, billing_blueprint, bills_blueprint,
                      exports_blueprint, documents_blueprint,
                      reminders_blueprint, keys_blueprint, test_clocks_blueprint, plans_blueprint,
                      subscriptions_blueprint, all_subscriptions_blueprint, payer_profiles_blueprint,
                      orders_blueprint, all_orders_blueprint):
        api.register_blueprint(blueprint)
    register_error_handlers(app)  # after Api(): replaces flask-smorest's error shape with ours
    ledger: LedgerService = app.extensions["ledger"]
    rate_limits = RateLimits(settings.rate_limit, settings.rate_limit_storage)

    @app.before_request
    def authorize_and_record_cause() -> None:
        # The request id is the server's; a client's own id is kept beside it, never instead.
        g.started_s = time.perf_counter()  # for the latency metric and the access record, refused requests too
        g.request_id = uuid.uuid4().hex
        refuse_unsafe_url()
        authorize(ledger.commands.authenticate, rate_limits.check)
        who = g.get("caller")
        g.cause_token = set_cause(
            kind="http", method=request.method, path=request.path, request_id=g.request_id,
            client_request_id=client_request_id(), api_key_id=who.key_id if who else None,
            role=who.role.value if who else None,
        )

    @app.after_request
    def tag_response(response: Response) -> Response:
        response.headers["X-Request-Id"] = g.get("request_id", "")
        return response

    @app.teardown_request
    def forget_cause(_: BaseException | None) -> None:
        token = g.pop("cause_token", None)
        if token is not None:
            reset_cause(token)

    app.register_blueprint(probes_blueprint)
    app.register_blueprint(metrics_blueprint)
    instrument(app)
    log_requests(app)
    document_access(api, app)
    return app


class LedgerApi(Api):
    ERROR_SCHEMA = ErrorSchema  # the spec documents the error body the API really sends


def refuse_unsafe_url() -> None:
    """Path and query text reach SQL and documents: control characters and lone surrogates
    are refused before routing decides anything (PostgreSQL cannot even compare a NUL)."""
    for name, value in [*(request.view_args or {}).items(), *request.args.items(multi=True)]:
        problem = unsafe_character(name) or unsafe_character(str(value))
        if problem:
            raise UnsafeText(f"the {name!r} parameter holds {problem}", field=name)


MAX_CLIENT_REQUEST_ID = 128


def client_request_id() -> str | None:
    """The client's X-Request-Id, kept only if it is short printable ASCII."""
    value = request.headers.get("X-Request-Id")
    if value and len(value) <= MAX_CLIENT_REQUEST_ID and value.isascii() and value.isprintable():
        return value
    return None
