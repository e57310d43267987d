"""Ledger events out, LowBalance and accepted reserve replies, against a real broker process."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from decimal import Decimal as D

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from consumer import publisher_metrics
from consumer.event_messages import decode
from consumer.ingest import Incoming, Outcome
from consumer.kafka_loop import KafkaIngest
from consumer.publisher import EventPublisher, PublisherSettings
from ledger_core.account import ACCOUNT_EVENT_TYPES, Account
from ledger_core.commands import PostCharge, Recharge, RecordUsage, Reserve, Settle
from ledger_core.usage import UsageLine
from tests.kafka.conftest import PARTITIONS, consume_until, read_topic
from tests.service.helpers import open_account

MAX_ROUNDS = 1_000


@pytest.fixture
def events_topic(kafka_bootstrap: str) -> str:
    name = f"events-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)])
    admin.close()
    return name


@pytest.fixture
def publisher(service, kafka_bootstrap, events_topic):
    out = EventPublisher(service.commands, PublisherSettings(kafka_bootstrap, events_topic, batch_events=7))
    yield out
    out.close()


@pytest.fixture
def loop(service, kafka_settings):
    ingest = KafkaIngest(service, kafka_settings)
    yield ingest
    ingest.close()


def publish_all(publisher: EventPublisher) -> None:
    for _ in range(MAX_ROUNDS):
        if publisher.publish_once() == 0:
            return
    raise AssertionError("the publisher never caught up with the log")


def account_events(service) -> list[tuple[int, str, int, str]]:
    """(position, aggregate id, version, type) of every Account event in the store, in log order."""
    wanted = {f"{Account.__module__}:Account.{t}" for t in ACCOUNT_EVENT_TYPES}
    notifications = service.commands.recorder.select_notifications(start=1, limit=100_000)
    return [(n.id, str(n.originator_id), n.originator_version, n.topic.rsplit(".", 1)[1])
            for n in notifications if n.topic in wanted]


def published(bootstrap: str, topic: str, expected: int) -> list[tuple[bytes, dict]]:
    """(key, message) in partition order; each partition's records stay in their order."""
    records = read_topic(bootstrap, topic, expected)
    by_partition = defaultdict(list)
    for record in records:
        by_partition[record.partition].append(record)
    return [(r.key, decode(r.value)) for p in sorted(by_partition) for r in sorted(by_partition[p], key=lambda r: r.offset)]


def test_commands_come_out_in_order_per_account_with_their_positions_and_exact_amounts(
        service, publisher, kafka_bootstrap, events_topic):
    for n in range(3):
        account = open_account(service, f"ev{n}", billing_mode="postpaid", credit_limit="100")
        service.handle(Recharge(account, amount="65.98", reference="PAY-1"))
        service.handle(RecordUsage(account, idempotency_key="u1", unit_price="0.0000035",
                                   line=UsageLine(product="sms", quantity="7")))
        service.handle(RecordUsage(account, idempotency_key="u2", amount="0.000009", line=UsageLine(product="sms")))
        service.handle(Reserve(account, reservation_id="h", amount="10"))
        service.handle(Settle(account, "h", amount="3.25", line=UsageLine(product="call")))
        service.handle(PostCharge(account, idempotency_key="c", kind="addon", description="x", amount="1610.61"))
    stored = account_events(service)
    counted_before = publisher_metrics.EVENTS.labels("UsageRecorded")._value.get()
    newest = service.commands.recorder.max_notification_id()
    assert publisher.lag() == newest == publisher_metrics.LAG._value.get()  # nothing published yet
    publish_all(publisher)
    assert publisher.position == service.commands.recorder.max_notification_id()  # past the client keys too
    assert publisher.lag() == 0
    assert publisher_metrics.EVENTS.labels("UsageRecorded")._value.get() - counted_before == 6
    out = published(kafka_bootstrap, events_topic, len(stored))
    assert len(out) == len(stored)  # a clean run publishes each event once
    for key, message in out:
        assert key.decode() == message["account_id"]
    for n in range(3):
        account = f"ev{n}"
        mine = [m for _, m in out if m["account_id"] == account]
        aggregate = str(service.commands.account(account).id)
        expected = [(p, v, t) for p, a, v, t in stored if a == aggregate]
        assert [(m["position"], m["version"], m["type"]) for m in mine] == expected
        assert [m["version"] for m in mine] == list(range(1, len(mine) + 1))
        by_type = {m["type"]: m for m in mine}
        assert by_type["Recharged"]["payload"]["amount"] == "65.980000"  # as stored: 6 places, a string
        assert by_type["Recharged"]["transaction_no"] == f"{account}:00000002"
        usage = [m["payload"]["amount"] for m in mine if m["type"] == "UsageRecorded"]
        assert [D(a) for a in usage] == [D("0.000024"), D("0.000009")]  # 7 x 0.0000035 = 0.0000245, half even
        assert D(by_type["ReservationSettled"]["payload"]["amount"]) == D("3.25")
        assert D(by_type["ChargePosted"]["payload"]["amount"]) == D("1610.61")
        assert by_type["CreditsReserved"]["transaction_no"] is None
        assert by_type["AccountOpened"]["timestamp"].endswith("Z")


def test_a_usage_run_across_the_threshold_signals_once_and_again_after_a_recharge(
        service, loop, produce, publisher, kafka_bootstrap, events_topic):
    open_account(service, "low", low_balance_threshold="10")
    service.handle(Recharge("low", amount="30"))  # usable 30
    for n, amount in enumerate(["5", "10", "6", "1"]):  # 25, 15, 9 (crossed), 8
        produce("low", json.dumps({"event_id": f"u{n}", "type": "usage", "account_id": "low", "product": "sms",
                                   "amount": amount, "schema_version": 1}).encode())
    consume_until(loop, 4)
    service.handle(Recharge("low", amount="20"))  # 28: re-armed
    produce("low", json.dumps({"event_id": "u9", "type": "usage", "account_id": "low", "product": "sms",
                               "amount": "19", "schema_version": 1}).encode())
    consume_until(loop, 5)
    assert loop.counts[Outcome.APPLIED] == 5
    publish_all(publisher)
    out = [m for _, m in published(kafka_bootstrap, events_topic, len(account_events(service)))]
    lows = [m for m in out if m["type"] == "LowBalance"]
    assert len(lows) == 2
    by_position = {m["position"]: m for m in out}
    for low, crossing_amount in zip(lows, ["6", "19"]):
        assert (D(low["payload"]["usable_credits"]), D(low["payload"]["threshold"])) == (D("9"), D("10"))
        crossed = by_position[low["payload"]["crossed_position"]]
        assert (crossed["type"], D(crossed["payload"]["amount"])) == ("UsageRecorded", D(crossing_amount))
        assert crossed["version"] == low["payload"]["crossed_version"] == low["version"] - 1


def test_an_accepted_reserve_is_answered_on_the_results_topic_next_to_a_refused_one(
        service, loop, produce, kafka_settings):
    open_account(service, "rich")
    service.handle(Recharge("rich", amount="10"))
    for event_id, amount in (("r-ok", "7.5"), ("r-no", "7.5")):  # the second finds 2.5 usable
        produce("rich", json.dumps({"event_id": event_id, "type": "reserve", "account_id": "rich",
                                    "reservation_id": event_id, "amount": amount, "schema_version": 1}).encode())
    consume_until(loop, 2)
    assert (loop.counts[Outcome.APPLIED], loop.counts[Outcome.REJECTED]) == (1, 1)
    replies = {r.key: json.loads(r.value) for r in read_topic(kafka_settings.bootstrap_servers,
                                                              kafka_settings.topics.results, 2)}
    accepted, refused = replies[b"r-ok"], replies[b"r-no"]
    assert (accepted["status"], accepted["details"]) == ("accepted", {"reservation_id": "r-ok", "amount": "7.50"})
    assert (refused["status"], refused["code"]) == ("rejected", "insufficient_credits")
    assert set(accepted) == set(refused)  # one reply shape
    assert loop.store.pending() == []  # acknowledged, so removed from the outbox


def test_an_accepted_reserve_written_on_its_own_stores_its_reply_with_the_booking(service, loop, kafka_settings):
    open_account(service, "solo")
    service.handle(Recharge("solo", amount="10"))
    value = json.dumps({"event_id": "s-1", "type": "reserve", "account_id": "solo", "reservation_id": "s-1",
                        "amount": "4", "schema_version": 1}).encode()
    assert loop.ingestor.handle(Incoming(kafka_settings.topics.usage, 0, 0, b"solo", value)) is Outcome.APPLIED
    [(_, reply)] = loop.store.pending()  # written by the recorder, in the reserve's transaction
    assert (reply.key, json.loads(reply.value)["status"]) == (b"s-1", "accepted")
    assert service.account_row("solo").figures.reserved == D("4")


def test_a_crash_after_the_acks_but_before_the_position_is_stored_publishes_the_batch_again(
        service, publisher, kafka_bootstrap, events_topic, monkeypatch):
    open_account(service, "twice")
    for n in range(3):
        service.handle(Recharge("twice", amount=f"{n + 1}.5"))
    stored = account_events(service)  # 4 events, one batch of 7
    with monkeypatch.context() as patch:
        def crash(_extras):
            raise SystemExit("killed between the acks and the position write")
        patch.setattr(publisher.store, "record", crash)
        with pytest.raises(SystemExit):
            publisher.publish_once()
    assert publisher.position == 0  # nothing stored: the restart begins again
    publish_all(publisher)
    out = [m for _, m in published(kafka_bootstrap, events_topic, 2 * len(stored))]
    assert [m["position"] for m in out] == [p for p, *_ in stored] * 2  # the same messages, in the same order
    first_time: list[int] = []
    for m in out:
        if not first_time or m["position"] > first_time[-1]:
            first_time.append(m["position"])
    assert first_time == [p for p, *_ in stored]
