"""Usage over Kafka against a real broker process, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import random
import threading
from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from consumer import metrics
from consumer.ingest import Outcome
from consumer.kafka_loop import KafkaIngest
from ledger_core.commands import RecordUsage
from ledger_core.usage import UsageLine
from projections.bills import BillFilter
from tests.kafka.conftest import consume_until, read_topic
from tests.service.helpers import open_account

MICRO = Decimal("0.000001")


def message(event_id: str, account: str, **fields) -> bytes:
    return json.dumps({"event_id": event_id, "type": "usage", "account_id": account, "product": "sms",
                       "schema_version": 1, **fields}).encode()


@pytest.fixture
def loop(service, kafka_settings):
    ingest = KafkaIngest(service, kafka_settings)
    yield ingest
    ingest.close()


def test_usage_events_for_several_accounts_land_exactly_as_a_model_says(service, loop, produce):
    accounts = [open_account(service, f"k{n}", billing_mode="postpaid", credit_limit="1000") for n in range(4)]
    rng, expected = random.Random(3), {a: Decimal(0) for a in accounts}
    for n in range(120):
        account = rng.choice(accounts)
        if n % 3:
            amount = Decimal(rng.randint(1, 5_000_000)) * MICRO
            produce(account, message(f"e{n}", account, amount=f"{amount:f}", channel_account="WABA-1",
                                     application_name="Shop Bot"))
            expected[account] -= amount
        else:
            quantity, price = Decimal(rng.randint(1, 900)), Decimal("0.0000035")
            produce(account, message(f"e{n}", account, quantity=str(quantity), unit_price=str(price)))
            expected[account] -= (quantity * price).quantize(MICRO, rounding=ROUND_HALF_EVEN)
    applied_before = metrics.MESSAGES.labels("applied")._value.get()
    consume_until(loop, 120)
    assert loop.counts[Outcome.APPLIED] == 120
    assert metrics.MESSAGES.labels("applied")._value.get() - applied_before == 120
    assert loop.measure_lag() == 0
    for account in accounts:
        assert service.account_row(account).figures.expecting_invoice == expected[account]
    positions = loop.store.positions(f"kafka:{loop.settings.group_id}:")
    assert sum(positions.values()) == 120  # every partition recorded at its last offset + 1
    for account in accounts:  # each message's channel account reaches its bill line
        [bill], _ = service.view.bills(BillFilter(account_id=account), 10)
        assert {(x["channel_account"], x["application_name"]) for x in bill.lines} == {("WABA-1", "Shop Bot"),
                                                                                       (None, None)}
        assert sum(x["amount"] for x in bill.lines) == -expected[account]


def test_every_bad_message_class_lands_in_the_dead_letter_topic_and_the_good_ones_around_it_apply(
        service, loop, produce, kafka_settings):
    open_account(service, "good")
    bad = {
        b"{not json": "invalid_json",
        json.dumps({"type": "usage", "account_id": "good", "schema_version": 1}).encode(): "invalid_message",
        message("b3", "nobody", amount="1"): "account_not_found",
        message("b4", "good", amount="1", currency="USD"): "currency_mismatch",
        message("b5", "good", amount="1.0000001"): "invalid_amount",
        message("b6", "good", amount="-2"): "invalid_amount",
    }
    for n, value in enumerate(bad):
        produce("good", message(f"g{n}", "good", amount="1"))
        produce("good", value)
    dead_before = metrics.MESSAGES.labels("dead_letter")._value.get()
    consume_until(loop, 2 * len(bad))
    assert metrics.MESSAGES.labels("dead_letter")._value.get() - dead_before == len(bad)
    assert (loop.counts[Outcome.APPLIED], loop.counts[Outcome.DEAD_LETTER]) == (len(bad), len(bad))
    assert service.account_row("good").figures.expecting_invoice == -len(bad)
    dead = read_topic(kafka_settings.bootstrap_servers, kafka_settings.topics.dead_letters, len(bad))
    landed = {record.value: dict(record.headers)["reason"].decode() for record in dead}
    assert landed == bad  # the original bytes, each with its reason
    offsets = {int(dict(record.headers)["source_offset"]) for record in dead}
    assert len(offsets) == len(bad)


def test_the_same_event_sent_three_times_changes_the_books_once(service, loop, produce):
    open_account(service, "dup")
    for _ in range(3):
        produce("dup", message("same-event", "dup", amount="0.75"))
    consume_until(loop, 3)
    assert (loop.counts[Outcome.APPLIED], loop.counts[Outcome.DUPLICATE]) == (1, 2)
    assert service.account_row("dup").figures.expecting_invoice == Decimal("-0.75")


def test_a_refused_reserve_is_answered_on_the_results_topic(service, loop, produce, kafka_settings):
    open_account(service, "poor")  # prepaid, no money: usable credits 0
    produce("poor", json.dumps({"event_id": "r-1", "type": "reserve", "account_id": "poor", "reservation_id": "call-1",
                                "amount": "5", "schema_version": 1}).encode())
    consume_until(loop, 1)
    assert loop.counts[Outcome.REJECTED] == 1
    [reply] = read_topic(kafka_settings.bootstrap_servers, kafka_settings.topics.results, 1)
    body = json.loads(reply.value)
    assert (reply.key, body["status"], body["code"]) == (b"r-1", "rejected", "insufficient_credits")


def test_a_key_booked_over_http_or_in_an_earlier_batch_is_a_duplicate_when_it_comes_again(service, loop, produce):
    open_account(service, "again")
    # as the HTTP API passes it: its schema reads amounts as 6-place Decimals, like the consumer's
    service.handle(RecordUsage("again", idempotency_key="via-http", amount=Decimal("0.500000"),
                               line=UsageLine(product="sms")))
    produce("again", message("first", "again", amount="0.25"))
    consume_until(loop, 1)  # committed in a batch of its own
    produce("again", message("first", "again", amount="0.25"))
    produce("again", message("via-http", "again", amount="0.5"))
    consume_until(loop, 3)
    assert (loop.counts[Outcome.APPLIED], loop.counts[Outcome.DUPLICATE]) == (1, 2)
    assert service.account_row("again").figures.expecting_invoice == Decimal("-0.75")


def test_events_a_crashed_writer_left_unprojected_are_projected_on_start_and_when_idle(service, loop):
    """A consumer killed between its write and its projection, with no message left to consume."""
    account = open_account(service, "orphan", billing_mode="postpaid", credit_limit="100")
    service.commands.handle(RecordUsage(account, idempotency_key="u1", amount="2",
                                        line=UsageLine(product="sms")))  # written, not projected
    assert service.account_row(account).figures.expecting_invoice == 0
    stopped = threading.Event()
    stopped.set()
    loop.run(stopped)  # starts, then stops at once
    assert service.account_row(account).figures.expecting_invoice == -2
    service.commands.handle(RecordUsage(account, idempotency_key="u2", amount="3", line=UsageLine(product="sms")))
    assert loop.poll_once() == 0
    assert service.account_row(account).figures.expecting_invoice == -5


def test_power_events_over_kafka_meter_a_cloud_phone_once_each(service, loop, produce):
    from ledger_core.commands import PayOrder, PlaceOrder

    open_account(service, "acme", billing_mode="postpaid", credit_limit="100")
    order = service.handle(PlaceOrder("acme", kind="cloud_phone", product="Phone", quantity="1", unit_price="0",
                                      resource_id="cp-9", running_price="0.01", running_unit="minute",
                                      order_id="ord_k9")).transaction_no
    service.handle(PayOrder("acme", order, method="balance"))
    for event_id, state, at in (("p1", "on", "2026-11-20T10:00:00Z"), ("p2", "off", "2026-11-20T10:42:10Z"),
                                ("p2", "off", "2026-11-20T10:42:10Z"), ("p3", "on", "2026-11-20T11:00:00Z"),
                                ("p4", "off", "2026-11-20T11:00:59Z")):
        produce("acme", json.dumps({"event_id": event_id, "type": "power", "account_id": "acme", "order_id": order,
                                    "state": state, "occurred_at": at, "schema_version": 1}).encode())
    consume_until(loop, 5)
    assert service.view.order(order).running_fees == Decimal("0.44")  # 43 + 1 started minutes
    assert service.account_row("acme").figures.expecting_invoice == Decimal("-0.44")
