"""One error shape for every failure: {"error": {"code", "message", "details"}}.

Domain errors carry their code and category; the category alone decides the status.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import psycopg
from flask import Flask, Response, jsonify, request
from flask_smorest import abort
from marshmallow import RAISE, Schema, fields
from psycopg_pool import PoolTimeout
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException

from ledger_core.errors import LedgerError
from service.wire import STATUS_BY_CATEGORY, BadJson, load_json

log = logging.getLogger(__name__)

CODE_BY_STATUS = {
    400: "invalid_input",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "request_too_large",
    415: "unsupported_media_type",
}


class ErrorSchema(Schema):
    """The body of every error answer."""

    class Body(Schema):
        code = fields.String(required=True, metadata={"description": "stable machine code, e.g. insufficient_credits"})
        message = fields.String(required=True)
        details = fields.Dict(required=True)

    error = fields.Nested(Body, required=True)


class LedgerParser(FlaskParser):
    """Bad input is a 400; JSON numbers are read as exact Decimals; a body must be JSON."""

    DEFAULT_VALIDATION_STATUS = 400
    # A filter a client believes applied must apply or be refused: unknown query parameters
    # are a 400, on lists as on exports (webargs would drop them silently).
    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": RAISE, "querystring": RAISE}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._schemas: dict[type[Schema], Schema] = {}

    def _get_schema(self, argmap: Any, req: Any) -> Schema:
        """One instance per schema class, not one per request: making one deep-copies every
        field, and a schema keeps no state between loads."""
        if isinstance(argmap, type) and issubclass(argmap, Schema):
            schema = self._schemas.get(argmap)
            if schema is None:
                schema = self._schemas[argmap] = argmap()
            return schema
        return super()._get_schema(argmap, req)

    def _raw_load_json(self, req: Any) -> Any:
        if not is_json_request(req):
            if req.get_data(cache=True):
                abort(415, message="send the body as application/json")
            return core.missing
        data = req.get_data(cache=True)
        try:
            return load_json(data.decode("utf-8"))
        except UnicodeDecodeError:
            abort(400, message="the body is not UTF-8", code="invalid_json")
        except BadJson as error:
            abort(400, message=f"the body is not JSON the ledger accepts: {error}", code=error.code)

    def _handle_invalid_json_error(self, error: Any, req: Any, *args: Any, **kwargs: Any) -> Any:
        abort(400, message=f"the body is not valid JSON: {error}", code="invalid_json")


def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> Response:
    response = jsonify({"error": {"code": code, "message": message, "details": _jsonable(details or {})}})
    response.status_code = status
    return response


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)  # Decimal, datetime: as text, never as float


MAX_DRAIN_BYTES = 1024 * 1024


def _drain_refused_body() -> None:
    """Reads (and drops) a refused body before answering 413, up to a bound: closing a
    socket with unread data makes the kernel send a reset, which can reach the client
    before the 413 does. Beyond the bound the reset is the cheaper answer."""
    stream = request.environ.get("wsgi.input")
    remaining = min(request.content_length or 0, MAX_DRAIN_BYTES)
    while stream is not None and remaining > 0:
        chunk = stream.read(min(64 * 1024, remaining))
        if not chunk:
            break
        remaining -= len(chunk)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(LedgerError)
    def ledger_error(error: LedgerError) -> Response:
        status = STATUS_BY_CATEGORY.get(error.category, 500)
        if status == 500:
            log.error("internal ledger error: %s", error, exc_info=error)
        response = error_response(status, error.code, error.message, error.details)
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="ledger"'
        if status in (429, 503):
            response.headers["Retry-After"] = str(error.details.get("retry_after_s", 1))
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        if status == 413:
            _drain_refused_body()
        data = getattr(error, "data", {}) or {}
        code = data.get("code") or CODE_BY_STATUS.get(status, "http_error")
        details: dict[str, Any] = {}
        if "messages" in data:  # field errors from the schema, keyed by location (json, query)
            details["fields"] = {k: v for location in data["messages"].values() for k, v in location.items()}
        message = data.get("message") or ("some fields are invalid" if details else error.description or "")
        response = error_response(status, code, message, details)
        if status == 405 and getattr(error, "valid_methods", None):
            response.headers["Allow"] = ", ".join(sorted(error.valid_methods))  # type: ignore[attr-defined]
        for name, value in (data.get("headers") or {}).items():
            response.headers[name] = value
        return response

    @app.errorhandler(psycopg.OperationalError)
    @app.errorhandler(PoolTimeout)
    @app.errorhandler(sqlite3.OperationalError)
    def database_unavailable(error: Exception) -> Response:
        # Down, overloaded (no pooled connection within the wait, or too many waiting), a
        # statement past its timeout, SQLite's lock held too long: nothing of the request was
        # committed (a committed write answers before any of these can reach here), so the
        # client may retry, with its idempotency key.
        log.warning("database unavailable: %s: %s", type(error).__name__, error)
        response = error_response(503, "database_unavailable", "the database is unavailable or busy; retry shortly")
        response.headers["Retry-After"] = "1"
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "the ledger could not complete the request")
