"""Two consumer processes' worth of consumers in one group share the partitions."""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal

import pytest

from consumer.ingest import Outcome
from consumer.kafka_loop import KafkaIngest
from service.ledger_service import LedgerService
from service.settings import Settings
from tests.service.helpers import open_account

pytestmark = pytest.mark.postgres
MESSAGES, ACCOUNTS, JOIN_TIMEOUT_S, RUN_TIMEOUT_S = 400, 8, 60, 120


def test_two_consumers_over_four_partitions_apply_every_message_once(postgres_schema, kafka_settings, produce):
    services = [LedgerService(Settings(database=postgres_schema)) for _ in range(2)]
    accounts = [open_account(services[0], f"s{n}", billing_mode="postpaid", credit_limit="1000") for n in range(ACCOUNTS)]
    loops = [KafkaIngest(svc, kafka_settings) for svc in services]
    stop = threading.Event()

    def poll(loop: KafkaIngest) -> None:
        while not stop.is_set():
            loop.poll_once()

    threads = [threading.Thread(target=poll, args=(loop,)) for loop in loops]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        while not all(loop.consumer.assignment() for loop in loops):  # both members hold partitions
            assert time.monotonic() < deadline, "the group never gave both consumers partitions"
            time.sleep(0.1)
        for n in range(MESSAGES):
            account = accounts[n % ACCOUNTS]
            produce(account, json.dumps({"event_id": f"m{n}", "type": "usage", "account_id": account,
                                         "product": "sms", "amount": "0.01", "schema_version": 1}).encode())
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while sum(loop.counts[Outcome.APPLIED] for loop in loops) < MESSAGES:
            assert time.monotonic() < deadline, [dict(loop.counts) for loop in loops]
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    shares = [loop.counts[Outcome.APPLIED] for loop in loops]
    assert all(share > 0 for share in shares) and sum(shares) == MESSAGES
    assert sum(loop.counts[Outcome.DUPLICATE] for loop in loops) == 0
    services[0].projector.catch_up()
    for account in accounts:
        assert services[0].account_row(account).figures.expecting_invoice == -Decimal("0.01") * (MESSAGES // ACCOUNTS)
    for loop, svc in zip(loops, services):
        loop.close()
        svc.close()
