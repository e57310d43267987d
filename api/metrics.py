"""/metrics: Prometheus metrics of the HTTP API, added up over gunicorn's worker processes.

Requests by endpoint (the route's template, never a raw path: no account id becomes a
label), method and status; latency histograms; the connection pool per process; and, read
when scraped, how far the read model is behind the log. With PROMETHEUS_MULTIPROC_DIR set
(`ledger serve` sets it), every worker writes its samples there and any worker answers
for all of them."""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from api.auth import public

REQUESTS = Counter("ledger_http_requests_total", "HTTP requests answered", ["endpoint", "method", "status"])
LATENCY = Histogram("ledger_http_request_seconds", "Time to answer an HTTP request", ["endpoint", "method"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
POOL = Gauge("ledger_db_pool_connections", "Pooled database connections of this process, by state", ["state"],
             multiprocess_mode="livesum")

POOL_EVERY_S = 1.0
blp = Blueprint("metrics", __name__)


class ReadModelLag:
    """Read when scraped: one query each for the log's and the read model's positions."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Any:
        ledger = self.app.extensions["ledger"]
        lag = GaugeMetricFamily("ledger_read_model_lag_events", "Events in the log the read model has not applied")
        try:
            lag.add_metric([], (ledger.commands.recorder.max_notification_id() or 0) - ledger.projector.position)
        except Exception:  # noqa: BLE001 - the database may be down: the other metrics still answer
            return []
        return [lag]


@blp.get("/metrics")
@public
def metrics() -> Response:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    registry.register(ReadModelLag(current_app._get_current_object()))  # type: ignore[attr-defined]
    try:
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
    finally:
        registry.unregister(next(c for c in list(registry._collector_to_names) if isinstance(c, ReadModelLag)))


def instrument(app: Flask) -> None:
    pool = getattr(getattr(app.extensions["ledger"].commands.factory, "datastore", None), "pool", None)
    pool_read_at_s = -POOL_EVERY_S

    @app.after_request
    def count(response: Response) -> Response:
        nonlocal pool_read_at_s
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
        now_s = time.perf_counter()
        if "started_s" in g:
            LATENCY.labels(endpoint, request.method).observe(now_s - g.started_s)
        # psycopg's pool (SQLite's has no statistics), read at most once a second: a scrape
        # every few seconds sees no finer, and three gauges a request cost 2.4% of a read.
        if hasattr(pool, "get_stats") and now_s - pool_read_at_s >= POOL_EVERY_S:
            pool_read_at_s = now_s
            stats = pool.get_stats()
            POOL.labels("open").set(stats.get("pool_size", 0))
            POOL.labels("idle").set(stats.get("pool_available", 0))
            POOL.labels("waited_for").set(stats.get("requests_waiting", 0))
        return response
