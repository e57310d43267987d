"""kill -9 the consumer at random moments, restart it, and nothing is lost or applied twice."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from decimal import Decimal

import pytest

from consumer.store import ConsumerStore
from projections.rows import TransactionFilter
from service.ledger_service import LedgerService
from service.settings import Settings
from tests.service.helpers import open_account

pytestmark = pytest.mark.postgres
MESSAGES, KILLS, ACCOUNTS = 1_500, 10, 5
PROGRESS_TIMEOUT_S = 60


def test_kill_nine_ten_times_loses_nothing_and_books_nothing_twice(postgres_schema, kafka_settings, produce, tmp_path):
    service = LedgerService(Settings(database=postgres_schema))
    accounts = [open_account(service, f"c{n}", billing_mode="postpaid", credit_limit="100000")
                for n in range(ACCOUNTS)]
    rng, expected = random.Random(9), {a: Decimal(0) for a in accounts}
    for n in range(MESSAGES):
        account, amount = rng.choice(accounts), Decimal(rng.randint(1, 999_999)) / 1_000_000
        expected[account] -= amount
        produce(account, json.dumps({"event_id": f"ev-{n}", "type": "usage", "account_id": account, "product": "sms",
                                     "amount": f"{amount:f}", "schema_version": 1}).encode())
    store = ConsumerStore(service.commands)
    prefix = f"kafka:{kafka_settings.group_id}:"
    env = {**os.environ, "LEDGER_DATABASE_URL": postgres_schema.url, "LEDGER_DATABASE_SCHEMA": postgres_schema.schema,
           "LEDGER_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
           "LEDGER_KAFKA_USAGE_TOPIC": kafka_settings.topics.usage, "LEDGER_KAFKA_GROUP": kafka_settings.group_id,
           "LEDGER_KAFKA_BATCH_MESSAGES": "25", "LEDGER_KAFKA_SESSION_TIMEOUT_MS": "6000"}

    def handled() -> int:
        return sum(store.positions(prefix).values())

    def projected() -> bool:
        return service.projector.position == service.commands.recorder.max_notification_id()

    def start(run: int) -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"consumer-{run}.log", "wb")
        return subprocess.Popen([sys.executable, "-m", "entrypoints.cli", "consume"], env=env, stdout=log, stderr=log)

    kills = 0
    for run in range(KILLS):
        before, process = handled(), start(run)
        deadline = time.monotonic() + PROGRESS_TIMEOUT_S
        while handled() == before and handled() < MESSAGES:  # kill only once it is working
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / f"consumer-{run}.log").read_text()
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.3))
        process.kill()  # SIGKILL: no cleanup, no commit, mid-transaction or not
        process.wait()
        kills += 1
    final, final_log = start(KILLS), tmp_path / f"consumer-{KILLS}.log"
    deadline = time.monotonic() + 3 * PROGRESS_TIMEOUT_S
    # The kills may have come after the last message, even between its write and its
    # projection: the final consumer must still leave the read model level with the log.
    while handled() < MESSAGES or not projected() or "consuming" not in final_log.read_text():
        assert final.poll() is None and time.monotonic() < deadline, f"only {handled()} of {MESSAGES} handled"
        time.sleep(0.1)
    final.terminate()
    assert final.wait(timeout=30) == 0, final_log.read_text()  # SIGTERM: a clean stop

    assert kills == KILLS
    assert handled() == MESSAGES  # every partition's position is its last offset + 1
    for account in accounts:
        assert service.account_row(account).figures.expecting_invoice == expected[account]
    booked = sum(rows_of(service, account) for account in accounts)
    assert booked == MESSAGES  # one row per message: none lost, none twice
    service.close()


def rows_of(service: LedgerService, account: str) -> int:
    count, cursor = 0, None
    while True:
        page = service.view.transactions(TransactionFilter(account, before_position=cursor), limit=500)
        count += len(page.rows)
        if page.next_before_position is None:
            return count
        cursor = page.next_before_position
