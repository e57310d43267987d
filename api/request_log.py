"""Every log record written while a request is handled carries its request id and key id,
and every request leaves one access record (method, route, status, time taken)."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, has_request_context, request

access_log = logging.getLogger("ledger.access")


class RequestContext(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            record.request_id = g.get("request_id")
            caller = g.get("caller")
            record.key_id = caller.key_id if caller is not None else None
        return True


def log_requests(app: Flask) -> None:
    context = RequestContext()
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RequestContext) for f in handler.filters):
            handler.addFilter(context)

    @app.after_request
    def access(response: Response) -> Response:
        elapsed_ms = (time.perf_counter() - g.get("started_s", time.perf_counter())) * 1000  # set by api/app.py
        access_log.info("request", extra={
            "method": request.method, "route": request.url_rule.rule if request.url_rule else None,
            "status": response.status_code, "duration_ms": round(elapsed_ms, 2)})
        return response
