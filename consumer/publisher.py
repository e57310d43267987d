"""Ledger events out: follow the event log and publish every Account event to Kafka.

Outbox style, with the log itself as the outbox. The publisher reads the notification
log (gap-free, in commit order) from the position it stored last, publishes a bounded
batch, waits until the broker acknowledged every message of it, and only then stores
the batch's last position (table ``source_positions``, row ``publisher:<topic>``; the
row only moves forward). A crash between the acks and that write publishes the batch
again after a restart: at least once, never lost. Messages carry their position, so a
consumer skips what it has applied (position <= the last one it applied for the account).

Order: one account's events share a key, hence a partition, and the producer keeps at
most one request in flight per connection, so a retried request cannot overtake the one
after it. Events of other aggregates (client keys) are passed over, the position moves
past them all the same.

One publisher per topic is the intended deployment. A second one is harmless (the same
messages twice, each copy in order) but doubles the traffic.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic
from kafka import KafkaProducer
from kafka.errors import KafkaError

from commands.ledger import Ledger
from consumer import publisher_metrics as metrics
from consumer.event_messages import encode, event_message
from consumer.kafka_security import kafka_connection
from consumer.store import ConsumerStore
from ledger_core.account import ACCOUNT_EVENT_TYPES, Account
from persistence.appending import AppendExtras
from service.settings import InvalidSetting

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 30  # for a whole batch to be acknowledged; else it is published again later
RETRY_WAIT_S = 2  # after a failed batch (broker away), before trying again
PROGRESS_EVERY_S = 10
ACCOUNT_IDS_CACHED = 100_000  # aggregate id -> account id, least recently used dropped first
MAX_BATCH_EVENTS = 10_000


@dataclass(frozen=True)
class PublisherSettings:
    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "ledger.events"
    batch_events: int = 500  # log entries read, published and acknowledged per batch
    idle_wait_ms: int = 200  # how long to sleep when the topic has caught up with the log
    connection: Mapping[str, Any] = field(default_factory=dict)  # TLS and SASL (consumer/kafka_security.py)

    def __post_init__(self) -> None:
        if not 1 <= self.batch_events <= MAX_BATCH_EVENTS or not 1 <= self.idle_wait_ms <= 60_000:
            raise InvalidSetting(f"publisher batch must be 1..{MAX_BATCH_EVENTS} events and idle wait 1..60000 ms")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PublisherSettings:
        env = os.environ if environ is None else environ
        return cls(
            bootstrap_servers=env.get("LEDGER_KAFKA_BOOTSTRAP_SERVERS") or env.get("KAFKA_BOOTSTRAP_SERVERS")
            or "127.0.0.1:9092",
            topic=env.get("LEDGER_EVENTS_TOPIC") or "ledger.events",
            batch_events=int(env.get("LEDGER_PUBLISHER_BATCH_EVENTS") or 500),
            idle_wait_ms=int(env.get("LEDGER_PUBLISHER_IDLE_WAIT_MS") or 200),
            connection=kafka_connection(env),
        )


class EventPublisher:
    def __init__(self, ledger: Ledger, settings: PublisherSettings) -> None:
        self.ledger, self.settings = ledger, settings
        self.recorder: Any = ledger.recorder
        self.store = ConsumerStore(ledger)
        self.source = f"publisher:{settings.topic}"
        self.account_topics = frozenset(get_topic(getattr(Account, t)) for t in ACCOUNT_EVENT_TYPES)
        self._account_ids: OrderedDict[UUID, str] = OrderedDict()
        self.published = 0  # messages acknowledged by this instance
        # acks=all: acknowledged means replicated. One request in flight per connection:
        # a retry can never overtake a later message of the same partition.
        self.producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all",
                                      max_in_flight_requests_per_connection=1, linger_ms=5, **settings.connection)

    @property
    def position(self) -> int:
        """The last log position published and acknowledged (0: none yet)."""
        return self.store.positions(self.source).get(self.source, 0)

    def lag(self, position: int | None = None) -> int:
        newest = self.recorder.max_notification_id() or 0
        lag = max(0, newest - (self.position if position is None else position))
        metrics.LAG.set(lag)
        return lag

    def run(self, stop: threading.Event) -> None:
        last_report, last_count = time.monotonic(), 0
        while not stop.is_set():
            try:
                passed = self.publish_once()
            except KafkaError as error:  # nothing stored: the same batch goes out again
                log.warning("publishing failed, retrying in %s s: %r", RETRY_WAIT_S, error)
                stop.wait(RETRY_WAIT_S)
                continue
            if passed < self.settings.batch_events:
                self.lag()
                stop.wait(self.settings.idle_wait_ms / 1000)  # caught up: poll the log again shortly
            elapsed = time.monotonic() - last_report
            if elapsed >= PROGRESS_EVERY_S:
                log.info("published %d events; %.0f events/s; position %d; lag %d", self.published,
                         (self.published - last_count) / elapsed, self.position, self.lag())
                last_report, last_count = time.monotonic(), self.published

    def publish_once(self) -> int:
        """Publishes the next batch of the log; returns how many log entries it passed."""
        position = self.position
        notifications = self.recorder.select_notifications(start=position + 1, limit=self.settings.batch_events)
        if not notifications:
            return 0
        messages = self._messages(notifications)
        futures = [self.producer.send(self.settings.topic, key=key, value=value) for key, value, _ in messages]
        self.producer.flush(timeout=PUBLISH_TIMEOUT_S)
        for future in futures:
            future.get(timeout=PUBLISH_TIMEOUT_S)  # raises if any was refused: the position stays
        reached = notifications[-1].id
        self.store.record(AppendExtras(sources={self.source: reached}))  # only after every ack
        self.published += len(messages)
        for _, _, event_type in messages:
            metrics.EVENTS.labels(event_type).inc()
        metrics.SKIPPED.inc(len(notifications) - len(messages))
        metrics.POSITION.set(reached)
        if len(notifications) == self.settings.batch_events:
            self.lag(reached)
        return len(notifications)

    def _messages(self, notifications: Sequence[Notification]) -> list[tuple[bytes, bytes, str]]:
        """(key, value, type) of each Account event, in log order."""
        by_id = {n.id: n for n in notifications}
        out = []
        for n in notifications:
            if n.topic not in self.account_topics:
                continue
            event = self.ledger.mapper.to_domain_event(n)
            if isinstance(event, Account.AccountOpened):
                self._remember(event.originator_id, event.account_id)
            crossed = self._crossed_position(n, by_id) if isinstance(event, Account.LowBalanceReached) else None
            message = event_message(event, n.id, self._account_id(event.originator_id), crossed)
            key, value = encode(message)
            out.append((key, value, message["type"]))
        return out

    def _crossed_position(self, low: Notification, by_id: dict[int, Notification]) -> int | None:
        """The position of the event a LowBalanceReached follows. Both are in one append
        and the log numbers an append's events one after the other, so it is ``low.id - 1``;
        checked rather than assumed."""
        previous = by_id.get(low.id - 1)
        if previous is None:
            found = self.recorder.select_notifications(start=low.id - 1, limit=1)
            previous = found[0] if found else None
        if previous is None or previous.originator_id != low.originator_id or \
                previous.originator_version != low.originator_version - 1:
            log.warning("no crossing event found before LowBalanceReached at position %d", low.id)
            return None
        return previous.id

    def _account_id(self, aggregate_id: UUID) -> str:
        account_id = self._account_ids.get(aggregate_id)
        if account_id is not None:
            self._account_ids.move_to_end(aggregate_id)
            return account_id
        [opened] = self.recorder.select_events(aggregate_id, lte=1)  # AccountOpened names the account
        event = self.ledger.mapper.to_domain_event(opened)
        self._remember(aggregate_id, event.account_id)
        return str(event.account_id)

    def _remember(self, aggregate_id: UUID, account_id: str) -> None:
        self._account_ids[aggregate_id] = account_id
        if len(self._account_ids) > ACCOUNT_IDS_CACHED:
            self._account_ids.popitem(last=False)

    def close(self) -> None:
        self.producer.close(timeout=PUBLISH_TIMEOUT_S)
