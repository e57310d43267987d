"""For a newcomer: the broker, the consumer, the events publisher and the API in one command,
and sample traffic."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid
from decimal import Decimal

import click
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from consumer.embedded_broker import start_tansu
from consumer.kafka_loop import ConsumerSettings
from consumer.publisher import PublisherSettings
from ledger_core.commands import OpenAccount
from ledger_core.errors import AccountExists
from service.ledger_service import LedgerService
from service.settings import Settings

LOCAL_BROKER = "127.0.0.1:9092"
PARTITIONS = 4
SAMPLE_PRODUCTS = (("sms", "message", "0.0079"), ("voice", "minute", "0.0125"), ("whatsapp", "conversation", "0.0414"))
SAMPLE_APPLICATIONS = {1: "Storefront", 2: "Support desk", 3: "Delivery alerts"}
MAX_SAMPLE_MESSAGES = 100_000


def _start_broker() -> subprocess.Popen[bytes]:
    try:
        return start_tansu(port=int(LOCAL_BROKER.rsplit(":", 1)[1]))[1]
    except RuntimeError as error:
        raise click.ClickException(str(error)) from None


def _create_topics(settings: ConsumerSettings, events_topic: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, **settings.connection)
    topics = settings.topics
    for name in (topics.usage, topics.dead_letters, topics.results, events_topic):
        try:
            admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)])
        except TopicAlreadyExistsError:
            pass
    admin.close()


@click.command("try-out")
@click.option("--port", type=int, default=8080, show_default=True, help="HTTP port of the API.")
def try_out(port: int) -> None:
    """Start an embedded Kafka broker (Tansu), the consumer and the API, on SQLite by default."""
    env = {**os.environ, "LEDGER_KAFKA_BOOTSTRAP_SERVERS": os.environ.get("LEDGER_KAFKA_BOOTSTRAP_SERVERS", LOCAL_BROKER)}
    broker = None if "LEDGER_KAFKA_BOOTSTRAP_SERVERS" in os.environ else _start_broker()
    children: list[subprocess.Popen[bytes]] = []
    try:
        _create_topics(ConsumerSettings.from_env(env), PublisherSettings.from_env(env).topic)
        LedgerService(Settings.from_env(env)).close()  # tables first, so the two processes never race for them
        ledger = [sys.executable, "-m", "entrypoints.cli"]
        children.append(subprocess.Popen([*ledger, "consume", "--metrics-port", "9464"], env=env))
        children.append(subprocess.Popen([*ledger, "publish-events", "--metrics-port", "9465"], env=env))
        click.echo(f"ledger: broker {env['LEDGER_KAFKA_BOOTSTRAP_SERVERS']}, consumer metrics on "
                   "http://127.0.0.1:9464/metrics, events publisher metrics on :9465; "
                   "now try:  ledger produce-sample", err=True)
        subprocess.run([*ledger, "serve", "--port", str(port)], env=env, check=False)
    finally:
        for process in [*children, *([broker] if broker else [])]:
            process.terminate()
            process.wait(timeout=15)


@click.command("produce-sample")
@click.option("--accounts", type=click.IntRange(1, 1_000), default=3, show_default=True)
@click.option("--messages", type=click.IntRange(1, MAX_SAMPLE_MESSAGES), default=200, show_default=True)
def produce_sample(accounts: int, messages: int) -> None:
    """Open sample accounts (if new) and post realistic usage to the usage topic."""
    settings = ConsumerSettings.from_env()
    service = LedgerService(Settings.from_env())
    ids = [f"sample-{n}" for n in range(accounts)]
    try:
        for account_id in ids:
            try:
                service.handle(OpenAccount(account_id, currency="SGD", billing_mode="postpaid",
                                           invoice_mode="consolidated", credit_limit=Decimal(500),
                                           payer={"name": f"Sample customer {account_id}"}))
            except AccountExists:
                pass
    finally:
        service.close()
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", **settings.connection)
    rng, run = random.Random(), uuid.uuid4().hex[:8]
    for n in range(messages):
        account = rng.choice(ids)
        product, unit, price = rng.choice(SAMPLE_PRODUCTS)
        app = rng.randint(1, 3)
        body = {"event_id": f"{run}-{n}", "type": "usage", "account_id": account, "product": product,
                "application_id": f"app-{app}", "application_name": SAMPLE_APPLICATIONS[app],
                "channel_account": f"WABA-{account[-1]}00{app}" if product == "whatsapp" else None,
                "app_key": f"AK{rng.randint(100, 999)}",
                "quantity": str(rng.randint(1, 40)), "unit": unit, "unit_price": price, "schema_version": 1}
        producer.send(settings.topics.usage, key=account.encode(), value=json.dumps(body).encode())
    hold = Decimal("1.50")
    producer.send(settings.topics.usage, key=ids[0].encode(), value=json.dumps({
        "event_id": f"{run}-hold", "type": "reserve", "account_id": ids[0], "reservation_id": f"call-{run}",
        "amount": str(hold), "schema_version": 1}).encode())
    producer.send(settings.topics.usage, key=ids[0].encode(), value=json.dumps({
        "event_id": f"{run}-settle", "type": "settle", "account_id": ids[0], "reservation_id": f"call-{run}",
        "amount": "0.84", "product": "voice", "schema_version": 1}).encode())
    producer.flush()
    producer.close()
    click.echo(f"posted {messages} usage messages, a hold and its settlement for {', '.join(ids)} "
               f"to {settings.topics.usage}; see GET /v1/accounts/{ids[0]}/balance (with the admin key "
               "`ledger serve` printed, or one from `ledger keys create`)")
