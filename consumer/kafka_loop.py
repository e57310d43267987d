"""The Kafka edge (kafka-python): consume usage messages, apply them, publish the outbox.

Where to resume is the database's word, not Kafka's: on every partition assignment the
consumer seeks to the position the ledger recorded with the last handled message.
Offsets are committed to Kafka only after that, for lag monitoring and for tools.
The read model is brought level with the log on start and whenever a poll comes back
empty: a consumer killed between its write and its projection leaves those events
unprojected, and with no message left to consume nobody else would project them.
Dead letters and replies leave through the outbox and are removed from it only once the
broker has acknowledged them (at least once; their headers and keys identify repeats).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata

from consumer import metrics
from consumer.ingest import DEFAULT_WARM_ACCOUNTS, Incoming, Ingestor, Outcome, Topics
from consumer.kafka_security import kafka_connection
from consumer.store import ConsumerStore
from service.ledger_service import LedgerService
from service.settings import int_setting

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 30
PROGRESS_EVERY_S = 10
MAX_WARM_ACCOUNTS = 1_000_000
FETCH_MAX_BYTES = 16 * 1024 * 1024  # one fetch response, all partitions
FRAME_HEADROOM_BYTES = 1024 * 1024  # protocol overhead around it


@dataclass(frozen=True)
class ConsumerSettings:
    bootstrap_servers: str = "127.0.0.1:9092"
    group_id: str = "ledger"
    topics: Topics = field(default_factory=Topics)
    batch_messages: int = 2_000  # at most this many messages per poll
    batch_wait_ms: int = 200  # and at most this long waiting for them
    session_timeout_ms: int = 10_000  # how long a silent (crashed) member keeps its partitions
    warm_accounts: int = DEFAULT_WARM_ACCOUNTS  # accounts kept in memory from batch to batch
    connection: Mapping[str, Any] = field(default_factory=dict)  # TLS and SASL (consumer/kafka_security.py)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConsumerSettings:
        env = os.environ if environ is None else environ
        usage = env.get("LEDGER_KAFKA_USAGE_TOPIC") or "ledger.usage"
        batch = int_setting(env, "LEDGER_KAFKA_BATCH_MESSAGES", 2_000, 1, 10_000)
        wait = int_setting(env, "LEDGER_KAFKA_BATCH_WAIT_MS", 200, 1, 60_000)
        warm = int_setting(env, "LEDGER_KAFKA_WARM_ACCOUNTS", DEFAULT_WARM_ACCOUNTS, 0, MAX_WARM_ACCOUNTS)
        return cls(
            bootstrap_servers=env.get("LEDGER_KAFKA_BOOTSTRAP_SERVERS") or env.get("KAFKA_BOOTSTRAP_SERVERS")
            or "127.0.0.1:9092",
            group_id=env.get("LEDGER_KAFKA_GROUP") or "ledger",
            topics=Topics(usage, f"{usage}.dlq", f"{usage}.results"),
            batch_messages=batch,
            batch_wait_ms=wait,
            session_timeout_ms=int(env.get("LEDGER_KAFKA_SESSION_TIMEOUT_MS") or 10_000),
            warm_accounts=warm,
            connection=kafka_connection(env),
        )


class _SeekToLedger(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: KafkaIngest) -> None:
        self.loop = loop

    def on_partitions_revoked(self, revoked: object) -> None:
        """Nothing to flush: every handled message is already recorded in the ledger."""

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        ingestor = self.loop.ingestor
        ingestor.warm.clear()  # partitions may come back after another consumer wrote to their accounts
        positions = self.loop.store.positions(f"kafka:{ingestor.group_id}:")
        for tp in assigned:
            position = positions.get(ingestor.source(tp.topic, tp.partition))
            if position is not None:
                self.loop.consumer.seek(tp, position)
        log.info("assigned %s", sorted(f"{tp.topic}:{tp.partition}" for tp in assigned))


class KafkaIngest:
    def __init__(self, service: LedgerService, settings: ConsumerSettings) -> None:
        self.settings, self.service = settings, service
        self.store = ConsumerStore(service.commands)
        self.ingestor = Ingestor(service, self.store, settings.topics, settings.group_id, settings.warm_accounts)
        self.consumer = KafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers, group_id=settings.group_id, enable_auto_commit=False,
            auto_offset_reset="earliest", max_poll_records=settings.batch_messages,
            session_timeout_ms=settings.session_timeout_ms, heartbeat_interval_ms=settings.session_timeout_ms // 3,
            # kafka-python asks for up to 50 MB but refuses frames over 1 MB: a fetch of a few
            # partitions' backlog failed ("Invalid frame length") and was retried. Agree on one size.
            fetch_max_bytes=FETCH_MAX_BYTES, receive_message_max_bytes=FETCH_MAX_BYTES + FRAME_HEADROOM_BYTES,
            **settings.connection)
        self.consumer.subscribe([settings.topics.usage], listener=_SeekToLedger(self))
        self.producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", linger_ms=5,
                                      **settings.connection)
        self.counts: dict[Outcome, int] = {outcome: 0 for outcome in Outcome}

    def run(self, stop: threading.Event) -> None:
        last_report, last_total = time.monotonic(), 0
        self.publish_outbox()  # what a previous run promised and did not get out
        self.service.projector.catch_up()
        while not stop.is_set():
            self.poll_once()
            elapsed = time.monotonic() - last_report
            if elapsed >= PROGRESS_EVERY_S:
                total = sum(self.counts.values())
                lag = self.measure_lag()
                log.info("handled %s; %.0f messages/s; lag %d", {k.value: v for k, v in self.counts.items()},
                         (total - last_total) / elapsed, lag)
                last_report, last_total = time.monotonic(), total

    def measure_lag(self) -> int:
        """Sets the lag gauge per assigned partition; returns the total."""
        assigned = list(self.consumer.assignment())
        if not assigned:
            return 0
        ends = self.consumer.end_offsets(assigned)
        total = 0
        for tp in assigned:
            lag = max(0, ends[tp] - self.consumer.position(tp))
            metrics.LAG.labels(tp.topic, str(tp.partition)).set(lag)
            total += lag
        return total

    def poll_once(self) -> int:
        batches = self.consumer.poll(timeout_ms=self.settings.batch_wait_ms, max_records=self.settings.batch_messages)
        messages = [Incoming(r.topic, r.partition, r.offset, r.key, r.value)
                    for records in batches.values() for r in records]  # in order within each partition
        handled = len(messages)
        if not messages:
            self.service.projector.catch_up()  # idle: finish what a crashed writer left behind
        for outcome in self.ingestor.handle_batch(messages) if messages else []:
            self.counts[outcome] += 1
            metrics.MESSAGES.labels(outcome.value).inc()
        commits = {tp: OffsetAndMetadata(records[-1].offset + 1, "", -1) for tp, records in batches.items()}
        if commits:
            metrics.BATCH_SIZE.observe(handled)
            self.consumer.commit(commits)  # after the ledger has them: for lag and tools only
        self.publish_outbox()
        return handled

    def publish_outbox(self) -> None:
        pending = self.store.pending()
        if not pending:
            return
        futures = [self.producer.send(m.topic, key=m.key, value=m.value, headers=list(m.headers)) for _, m in pending]
        self.producer.flush(timeout=PUBLISH_TIMEOUT_S)
        for future in futures:
            future.get(timeout=PUBLISH_TIMEOUT_S)  # raises if the broker refused: the rows stay for next time
        self.store.published([message_id for message_id, _ in pending])
        metrics.OUTBOX_PUBLISHED.inc(len(pending))

    def close(self) -> None:
        self.consumer.close()
        self.producer.close()
