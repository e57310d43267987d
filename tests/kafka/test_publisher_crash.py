"""kill -9 the events publisher at random moments while commands keep writing: after a
restart every stored Account event is on the topic, and deduplicated by position they
are exactly the store's events, in order per account."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import uuid
from collections import defaultdict

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from consumer.event_messages import decode
from consumer.store import ConsumerStore
from ledger_core.account import ACCOUNT_EVENT_TYPES, Account
from ledger_core.commands import Recharge, RecordUsage
from ledger_core.usage import UsageLine
from persistence.appending import AppendExtras
from service.ledger_service import LedgerService
from service.settings import Settings
from tests.kafka.conftest import PARTITIONS
from tests.service.helpers import open_account

pytestmark = pytest.mark.postgres
ACCOUNTS, KILLS, COMMANDS_PER_ROUND = 6, 5, 1_000
PROGRESS_TIMEOUT_S, READ_TIMEOUT_S = 30, 30


def write_round(service: LedgerService, accounts: list[str], rng: random.Random, round_no: int) -> None:
    """A few hundred usage records in one batch write (fast), some of them crossing thresholds."""
    ledger = service.commands
    with ledger.batch(AppendExtras(), accounts=accounts) as batch:
        for n in range(COMMANDS_PER_ROUND):
            account = rng.choice(accounts)
            if n % 50 == 0:
                batch.handle(Recharge(account, amount="40"))
            else:
                batch.handle(RecordUsage(account, idempotency_key=f"r{round_no}-{n}",
                                         amount=f"{rng.randint(1, 2_000_000) / 1_000_000:f}", line=UsageLine(product="sms")))


def read_all(bootstrap: str, topic: str) -> list[tuple[int, dict]]:
    """Every record on the topic, up to the end offsets taken at the start: (partition, message)."""
    reader = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                           auto_offset_reset="earliest")
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    reader.assign(partitions)
    reader.seek_to_beginning()
    ends = reader.end_offsets(partitions)
    records, deadline = defaultdict(list), time.monotonic() + READ_TIMEOUT_S
    while any(len(records[tp.partition]) < ends[tp] for tp in partitions):
        assert time.monotonic() < deadline, {p: len(r) for p, r in records.items()}
        for tp, batch in reader.poll(timeout_ms=200).items():
            records[tp.partition].extend(batch)
    reader.close()
    return [(p, decode(r.value)) for p in sorted(records) for r in sorted(records[p], key=lambda r: r.offset)]


def test_kill_nine_while_publishing_loses_nothing_and_keeps_each_account_in_order(
        postgres_schema, kafka_bootstrap, tmp_path):
    topic = f"events-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    admin.close()
    service = LedgerService(Settings(database=postgres_schema))
    accounts = [open_account(service, f"p{n}", billing_mode="prepaid", low_balance_threshold="15")
                for n in range(ACCOUNTS)]
    rng = random.Random(5)
    write_round(service, accounts, rng, 0)
    store, source = ConsumerStore(service.commands), f"publisher:{topic}"
    env = {**os.environ, "LEDGER_DATABASE_URL": postgres_schema.url, "LEDGER_DATABASE_SCHEMA": postgres_schema.schema,
           "LEDGER_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "LEDGER_EVENTS_TOPIC": topic,
           "LEDGER_PUBLISHER_BATCH_EVENTS": "5", "LEDGER_PUBLISHER_IDLE_WAIT_MS": "50"}

    def published() -> int:
        return store.positions(source).get(source, 0)

    def newest() -> int:
        return service.commands.recorder.max_notification_id() or 0

    def start(run: int) -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"publisher-{run}.log", "wb")
        return subprocess.Popen([sys.executable, "-m", "entrypoints.cli", "publish-events"], env=env,
                                stdout=log, stderr=log)

    mid_work = 0
    for run in range(KILLS):
        before, process = published(), start(run)
        deadline = time.monotonic() + PROGRESS_TIMEOUT_S
        while published() == before:  # kill only once it is working
            assert process.poll() is None and time.monotonic() < deadline, \
                (tmp_path / f"publisher-{run}.log").read_text()
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.5))
        mid_work += published() < newest()
        process.kill()  # SIGKILL: between a send and its ack, or an ack and the position write
        process.wait()
        write_round(service, accounts, rng, run + 1)  # the log keeps growing meanwhile
    final = start(KILLS)
    deadline = time.monotonic() + PROGRESS_TIMEOUT_S
    while published() < newest():
        assert final.poll() is None and time.monotonic() < deadline, f"published {published()} of {newest()}"
        time.sleep(0.05)
    final.terminate()
    assert final.wait(timeout=30) == 0  # SIGTERM: a clean stop

    wanted = {f"{Account.__module__}:Account.{t}" for t in ACCOUNT_EVENT_TYPES}
    stored = [n for n in service.commands.recorder.select_notifications(start=1, limit=1_000_000) if n.topic in wanted]
    messages = read_all(kafka_bootstrap, topic)
    positions = {m["position"] for _, m in messages}
    assert positions == {n.id for n in stored}  # every event at least once, nothing that is not one
    applied: dict[str, list[int]] = defaultdict(list)
    partition_of: dict[str, int] = {}
    for partition, m in messages:  # what a consumer does: skip positions it has applied
        assert partition_of.setdefault(m["account_id"], partition) == partition  # one account, one partition
        mine = applied[m["account_id"]]
        if not mine or m["position"] > mine[-1]:
            mine.append(m["position"])
    by_account: dict[str, list[int]] = defaultdict(list)
    aggregate_to_account = {service.commands.account(a).id: a for a in accounts}
    for n in stored:
        by_account[aggregate_to_account[n.originator_id]].append(n.id)
    assert dict(applied) == dict(by_account)  # exactly the store's events, in order, none missing
    assert any(m["type"] == "LowBalance" for _, m in messages)
    assert mid_work >= KILLS - 1  # the kills did land while there was work in hand
    service.close()
