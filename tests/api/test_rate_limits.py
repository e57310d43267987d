"""Per-key rate limits: 429 with Retry-After past the rate, counted per key, shared
across processes through Redis."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from api import rate_limits
from api.app import create_app
from ledger_core.errors import RateLimited
from tests.conftest import client_with_key


def limited_app(service, rates: str, storage: str = "memory://"):
    app = create_app(replace(service.settings, rate_limit=rates, rate_limit_storage=storage), service=service)
    app.testing = True
    return app


def test_a_key_past_its_rate_gets_429_with_retry_after_and_other_keys_go_on(service, key_for):
    app = limited_app(service, "3/minute")
    noisy, quiet = client_with_key(app, key_for("finance")), client_with_key(app, key_for("finance"))
    answers = [noisy.get("/v1/invoices") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert quiet.get("/v1/invoices").status_code == 200
    assert noisy.get("/livez").status_code == 200  # probes are not counted


def test_counts_are_shared_through_redis_by_every_process(service, key_for):
    storage = "redis://127.0.0.1:6379"
    rates = "2/minute"
    secret = key_for("finance")  # a new key id: no counts of an earlier run
    first = client_with_key(limited_app(service, rates, storage), secret)
    second = client_with_key(limited_app(service, rates, storage), secret)  # as another worker would
    assert first.get("/v1/invoices").status_code == 200
    assert second.get("/v1/invoices").status_code == 200
    assert first.get("/v1/invoices").status_code == 429


def test_in_memory_counts_start_no_thread_per_request_and_are_still_swept(monkeypatch):
    """The library's memory storage started a timer thread whenever its last one had
    finished: one per request when they came more than 10 ms apart."""
    limits = rate_limits.RateLimits("3/second", "memory://")
    started: list[threading.Thread] = []
    real_start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda self: (started.append(self), real_start(self))[1])
    for _ in range(3):
        time.sleep(0.015)  # past the library's 10 ms timer
        limits.check("spaced")
    assert started == []
    with pytest.raises(RateLimited):  # the rate still holds
        limits.check("spaced")
    storage = limits.limiter.storage
    assert storage.storage  # counts held
    monkeypatch.setattr(rate_limits, "SWEEP_INTERVAL_S", 0.0)
    monkeypatch.setattr(time, "time", lambda real=time.time: real() + 3_600)  # every count expired
    storage._next_sweep_s = 0.0
    limits.check("another")
    assert [key for key in storage.storage if "spaced" in key] == []  # swept inline
