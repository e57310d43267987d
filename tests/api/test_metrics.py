"""/metrics (api/metrics.py): what each request records, and what is read only now and then."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

import api.metrics
from api.app import create_app
from persistence.database import DatabaseConfig
from service.ledger_service import LedgerService
from service.settings import Settings


@pytest.mark.postgres
def test_the_pool_gauges_are_read_once_a_second_not_on_every_request(postgres_schema: DatabaseConfig,
                                                                      monkeypatch: pytest.MonkeyPatch):
    service = LedgerService(Settings(database=postgres_schema))
    try:
        pool = service.commands.factory.datastore.pool  # type: ignore[attr-defined]
        reads: list[dict[str, int]] = []
        read_stats = pool.get_stats
        monkeypatch.setattr(pool, "get_stats", lambda: reads.append(read_stats()) or reads[-1])
        client = create_app(replace(service.settings, rate_limit="off"), service=service).test_client()
        for _ in range(5):
            assert client.get("/livez").status_code == 200
        assert len(reads) == 1  # the first request's; the next four came within the second
        metrics = client.get("/metrics").get_data(as_text=True)
        opened = re.search(r'^ledger_db_pool_connections\{state="open"\} (\d+)', metrics, re.M)
        assert opened and int(opened.group(1)) == reads[0]["pool_size"] > 0
        monkeypatch.setattr(api.metrics, "POOL_EVERY_S", 0.0)
        client.get("/livez")
        assert len(reads) == 2  # read again at once: the second had passed
    finally:
        service.close()
