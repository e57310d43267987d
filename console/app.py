"""create_console: the billing console's pages, a Flask application of its own beside the API
(entrypoints/web.py mounts it at /console), on the same LedgerService and read models.

Security: a login with an API key makes a signed session cookie (HttpOnly, SameSite=Lax,
Secure unless LEDGER_CONSOLE_SECURE_COOKIE=false) that holds only the key's id; every form
carries a CSRF token (Flask-WTF); pages forbid framing and load nothing from elsewhere
(Content-Security-Policy). Every write a page makes records the same audit cause as the
API's, with kind "console": the key, its role, the request id.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from console import access
from console.accounts import blp as accounts_blueprint
from console.bills import blp as bills_blueprint
from console.catalog import blp as catalog_blueprint
from console.formatting import register_filters
from console.invoicing import blp as invoicing_blueprint
from console.login import blp as login_blueprint
from console.new_invoice import blp as new_invoice_blueprint
from console.recurring import blp as recurring_blueprint
from console.transactions import blp as transactions_blueprint
from ledger_core.errors import LedgerError
from persistence.appending import reset_cause, set_cause
from service.ledger_service import LedgerService
from service.settings import Settings
from service.wire import STATUS_BY_CATEGORY

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
SESSION_HOURS = 8
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


def create_console(service: LedgerService, settings: Settings | None = None) -> Flask:
    settings = settings or service.settings
    app = Flask("ledger_console", template_folder=str(HERE / "templates"), static_folder=str(HERE / "static"))
    app.config.update(
        # Without LEDGER_CONSOLE_SECRET, `ledger serve` makes one for its workers at start.
        SECRET_KEY=settings.console_secret or secrets.token_hex(32),
        SESSION_COOKIE_NAME="ledger_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.console_secure_cookie,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
        WTF_CSRF_TIME_LIMIT=None,  # as long as the session: a form left open an hour still posts
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
    )
    app.extensions["ledger"] = service
    CSRFProtect(app)
    register_filters(app)
    for blueprint in (login_blueprint, accounts_blueprint, bills_blueprint, transactions_blueprint,
                      invoicing_blueprint, new_invoice_blueprint, recurring_blueprint, catalog_blueprint):
        app.register_blueprint(blueprint)

    @app.before_request
    def authorize_and_record_cause() -> Any:
        g.request_id = uuid.uuid4().hex
        refused = access.authorize()
        who = g.get("caller")
        g.cause_token = set_cause(kind="console", method=request.method, path=request.path, request_id=g.request_id,
                                  api_key_id=who.key_id if who else None, role=who.role.value if who else None)
        return refused

    @app.teardown_request
    def forget_cause(_: BaseException | None) -> None:
        token = g.pop("cause_token", None)
        if token is not None:
            reset_cause(token)

    @app.after_request
    def secure_headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Request-Id"] = g.get("request_id", "")
        if response.mimetype == "text/html":
            response.headers["Cache-Control"] = "no-store"  # figures are never shown from a stale cache
        return response

    @app.errorhandler(CSRFError)
    def csrf_refused(error: CSRFError) -> Any:
        return render_template("error.html", status=400, message="The form expired or did not come from this "
                               "console. Go back, reload the page and try again."), 400

    @app.errorhandler(LedgerError)
    def ledger_error(error: LedgerError) -> Any:
        status = STATUS_BY_CATEGORY.get(error.category, 500)
        return render_template("error.html", status=status, message=error.message), status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Any:
        messages = {403: "Your role may not open this page.", 404: "There is nothing here, or you may not see it."}
        status = error.code or 500
        return render_template("error.html", status=status,
                               message=messages.get(status, error.description or "")), status

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Any:
        log.exception("unhandled error in a console page")
        return render_template("error.html", status=500,
                               message="The console could not complete the request."), 500

    return app
