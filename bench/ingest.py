"""Benchmark: usage events through a Kafka broker into PostgreSQL, end to end.

    .venv/bin/python bench/ingest.py [--events 200000] [--accounts 10000] [--consumers 1]
                                     [--shape uniform|zipf|mixed]

Starts Tansu (or uses KAFKA_BOOTSTRAP_SERVERS), opens the accounts, produces the usage
events, then runs `ledger consume` processes until the database has recorded every
message and the read models hold every event. Prints events/s
end to end, and a raw batched INSERT of the same number of rows into PostgreSQL measured
in the same run, as a ratio, each consumer's peak RSS, and what the database's sessions
did meanwhile (bench/pg_waits.py: what serialises the consumers). At the end every account's
figures are checked against what the messages must leave (bench/shapes.py): a digit off
fails the run. Target: >= 10,000 events/s end to end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import psycopg
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cpu import machine_busy_s, named_cpu_s, process_cpu_s  # noqa: E402
from bench.pg_waits import WaitSampler  # noqa: E402
from bench.shapes import SHAPES, check_books, messages  # noqa: E402
from consumer.embedded_broker import start_tansu  # noqa: E402
from consumer.store import ConsumerStore  # noqa: E402
from ledger_core.account import Account  # noqa: E402
from persistence.database import DatabaseConfig  # noqa: E402
from service.ledger_service import LedgerService  # noqa: E402
from service.settings import Settings  # noqa: E402

SERVER = os.environ.get("LEDGER_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASE, TOPIC, GROUP, PARTITIONS = "ledger_ingest", "bench.usage", "bench", 4
INSERT_BATCH_ROWS = 1_000
POLL_S = 0.2  # how often the database's positions are read while consuming


def fresh_database() -> str:
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    return urlparse(SERVER)._replace(path=f"/{DATABASE}").geturl()


def broker() -> tuple[str, subprocess.Popen[bytes] | None]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return os.environ["KAFKA_BOOTSTRAP_SERVERS"], None
    return start_tansu()


def raw_insert_rate(url: str, rows: int) -> float:
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE bench_raw (event_id text PRIMARY KEY, account_id text, amount numeric(38, 6))")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cursor:
            for start in range(0, rows, INSERT_BATCH_ROWS):
                cursor.executemany("INSERT INTO bench_raw VALUES (%s, %s, %s)",
                                   [(f"e{n}", f"a{n % 100}", "0.0042") for n in range(start, min(rows, start + INSERT_BATCH_ROWS))])
                conn.commit()
        return rows / (time.perf_counter() - started)


def profiled(command: list[str], profile: str | None, n: int) -> list[str]:
    if not profile:
        return command
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return [py_spy, "record", "--rate", "200", "--format", "raw", "-o", f"{profile}.{n}", "--", *command]


def alive(consumers: list[subprocess.Popen[bytes]]) -> None:
    """Fails the run at once if a consumer died, instead of waiting for it forever."""
    dead = [c.returncode for c in consumers if c.poll() is not None]
    if dead:
        raise SystemExit(f"a consumer exited (status {dead[0]}): see its log above")


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--consumers", type=int, default=1)
    parser.add_argument("--shape", choices=SHAPES, default="uniform", help="bench/shapes.py")
    parser.add_argument("--profile", metavar="FILE", help="sample the consumer(s) with py-spy into FILE[.n] (raw stacks)")
    args = parser.parse_args()
    url = fresh_database()
    bootstrap, broker_process = broker()
    service = LedgerService(Settings(database=DatabaseConfig(url)))
    try:
        ids = [f"acct-{n:05d}" for n in range(args.accounts)]
        for start in range(0, len(ids), 500):
            service.commands.save(*[Account.open(account_id=a, currency="SGD", billing_mode="postpaid",
                                                 invoice_mode="consolidated", credit_limit="1000000")
                                    for a in ids[start:start + 500]])
        service.projector.catch_up()
        KafkaAdminClient(bootstrap_servers=bootstrap).create_topics(
            [NewTopic(t, num_partitions=PARTITIONS, replication_factor=1) for t in (TOPIC, f"{TOPIC}.dlq", f"{TOPIC}.results")])
        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024)
        bodies, books = messages(args.shape, ids, args.events)
        for body in tqdm(bodies, desc="producing", unit="events"):
            producer.send(TOPIC, key=body["account_id"].encode(), value=json.dumps(body).encode())
        producer.flush()
        env = {**os.environ, "LEDGER_DATABASE_URL": url, "LEDGER_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
               "LEDGER_KAFKA_USAGE_TOPIC": TOPIC, "LEDGER_KAFKA_GROUP": GROUP}
        store = ConsumerStore(service.commands)
        sampler = WaitSampler(url)
        busy_before, postgres_before = machine_busy_s(), named_cpu_s("postgres")
        broker_before = process_cpu_s(broker_process.pid) if broker_process else 0.0
        started = time.perf_counter()
        command = [sys.executable, "-m", "entrypoints.cli", "--log-level", "WARNING", "consume"]
        consumers = [subprocess.Popen(profiled(command, args.profile, n), env=env, cwd=ROOT)
                     for n in range(args.consumers)]
        first: tuple[float, int] | None = None  # when the first messages were seen handled, and how many
        with sampler.measuring() as waits:
            with tqdm(total=args.events, desc="ingesting", unit="events") as bar:
                done = 0
                while done < args.events:
                    time.sleep(POLL_S)
                    alive(consumers)
                    now = sum(store.positions(f"kafka:{GROUP}:").values())
                    if now and first is None:
                        first = (time.perf_counter(), now)
                    bar.update(now - done)
                    done = now
            last = service.commands.recorder.max_notification_id() or 0
            while service.projector.position < last:  # and the read models hold every event: part of the time
                time.sleep(POLL_S / 4)
                alive(consumers)
        ended = time.perf_counter()
        sampler.close()
        seconds = ended - started  # includes starting the consumer and the group join (a few seconds)
        peaks = [peak_rss_mb(consumer.pid) for consumer in consumers]
        cpu = {"consumers": sum(process_cpu_s(consumer.pid) for consumer in consumers),
               "PostgreSQL": named_cpu_s("postgres") - postgres_before,
               "broker": process_cpu_s(broker_process.pid) - broker_before if broker_process else 0.0}
        busy = machine_busy_s() - busy_before
        for consumer in consumers:
            consumer.send_signal(signal.SIGINT if args.profile else signal.SIGTERM)  # py-spy writes on SIGINT
            consumer.wait(timeout=60)
        service.projector.catch_up()
        check_books(service, books)
        rate = args.events / seconds
        raw = raw_insert_rate(url, args.events)
        print(f"ingested {args.events:,} {args.shape} usage events for {args.accounts:,} accounts with "
              f"{args.consumers} consumer(s): {seconds:.1f} s = {rate:,.0f} events/s end to end (target >= 10,000); "
              f"books checked")
        print("consumer peak RSS: " + ", ".join(f"{mb:,.0f} MB" for mb in peaks))
        cpu["other (this script, kernel, exited)"] = busy - sum(cpu.values())
        print(f"CPU: {busy / seconds:.2f} of {os.cpu_count()} cores busy; per event: "
              + ", ".join(f"{name} {1e6 * s / args.events:,.0f} us" for name, s in cpu.items())
              + (" (under py-spy: the consumers' figure is py-spy's)" if args.profile else ""))
        print(waits.line())
        if first and ended > first[0]:
            print(f"after the first handled batch: {(args.events - first[1]) / (ended - first[0]):,.0f} events/s "
                  f"(startup and group join: {first[0] - started:.1f} s)")
        print(f"raw batched INSERT of {args.events:,} rows ({INSERT_BATCH_ROWS} per commit): {raw:,.0f} rows/s; "
              f"ingestion / raw = {rate / raw:.3f}")
    finally:
        service.close()
        if broker_process:
            broker_process.terminate()


if __name__ == "__main__":
    main()
