"""Four `ledger consume` processes started at the same moment on an empty database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal

import psycopg
import pytest

from consumer.store import ConsumerStore
from service.ledger_service import LedgerService
from service.settings import Settings
from tests.kafka.test_crash import rows_of
from tests.service.helpers import open_account

pytestmark = pytest.mark.postgres
CONSUMERS, MESSAGES, ACCOUNTS = 4, 400, 8
START_TIMEOUT_S, RUN_TIMEOUT_S = 90, 120


def test_four_consumers_started_at_once_on_an_empty_database_all_run_and_apply_every_message_once(
        postgres_schema, kafka_settings, produce, tmp_path):
    with psycopg.connect(postgres_schema.url) as conn:  # nothing yet: the consumers create it all
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s", (postgres_schema.schema,))
        assert tables.fetchone()[0] == 0
    env = {**os.environ, "LEDGER_DATABASE_URL": postgres_schema.url, "LEDGER_DATABASE_SCHEMA": postgres_schema.schema,
           "LEDGER_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
           "LEDGER_KAFKA_USAGE_TOPIC": kafka_settings.topics.usage, "LEDGER_KAFKA_GROUP": kafka_settings.group_id,
           "LEDGER_KAFKA_BATCH_MESSAGES": "50"}
    logs = [tmp_path / f"consumer-{n}.log" for n in range(CONSUMERS)]
    processes = [subprocess.Popen([sys.executable, "-m", "entrypoints.cli", "consume"], env=env,
                                  stdout=log.open("wb"), stderr=subprocess.STDOUT) for log in logs]
    service = None
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not all("consuming" in log.read_text() for log in logs):  # each came up: schema, tables, group
            for process, log in zip(processes, logs, strict=True):
                assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, [log.read_text()[-2000:] for log in logs]
            time.sleep(0.1)
        service = LedgerService(Settings(database=postgres_schema))
        accounts = [open_account(service, f"u{n}", billing_mode="postpaid", credit_limit="1000") for n in range(ACCOUNTS)]
        for n in range(MESSAGES):
            account = accounts[n % ACCOUNTS]
            produce(account, json.dumps({"event_id": f"m{n}", "type": "usage", "account_id": account, "product": "sms",
                                         "amount": "0.01", "schema_version": 1}).encode())
        store, prefix = ConsumerStore(service.commands), f"kafka:{kafka_settings.group_id}:"
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while sum(store.positions(prefix).values()) < MESSAGES or \
                service.projector.position < (service.commands.recorder.max_notification_id() or 0):
            assert all(p.poll() is None for p in processes), [log.read_text()[-2000:] for log in logs]
            assert time.monotonic() < deadline, f"{sum(store.positions(prefix).values())} of {MESSAGES} handled"
            time.sleep(0.1)
        for process in processes:
            process.send_signal(signal.SIGTERM)
        assert [p.wait(timeout=30) for p in processes] == [0] * CONSUMERS, [log.read_text()[-2000:] for log in logs]
        for log in logs:
            assert "Traceback" not in log.read_text(), log.read_text()
        assert sum(store.positions(prefix).values()) == MESSAGES  # every partition at its last offset + 1
        for account in accounts:
            assert service.account_row(account).figures.expecting_invoice == -Decimal("0.01") * (MESSAGES // ACCOUNTS)
            assert rows_of(service, account) == MESSAGES // ACCOUNTS  # one row a message: none lost, none twice
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        if service is not None:
            service.close()
