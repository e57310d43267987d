"""Benchmark: CPU instructions per write, a figure that does not move with the machine's load.

    .venv/bin/python bench/instructions.py [--path http|kafka|read] [--database sqlite|postgres] [--low 100] [--high 600]

Runs the write path in one process under `valgrind --tool=callgrind` (apt-get install
valgrind) twice, with ``--low`` and with ``--high`` writes, and prints the difference
divided by the writes between: the instructions one write costs, without the start-up.
The same code gives the same count to a few hundredths of a percent, so two versions
can be compared on a busy machine where requests per second move by 5-10%.

- http: usage posts through the Flask app (test client: the app, its schemas, auth,
  the command, the write and the read-model catch-up; no sockets), on SQLite.
- kafka: usage messages through the consumer's batch handler (parsing, the batch
  write, the read models), on SQLite, in batches of 500.
- read: balance reads through the Flask app (a "write" is one read here).

``--database postgres`` runs either on a fresh PostgreSQL database of its own
(LEDGER_BENCH_DATABASE_URL, default the local server) instead: the count is then this
process's side only, psycopg and its round trips included, not the server's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ACCOUNTS = 100
KAFKA_BATCH = 500
SERVER = os.environ.get("LEDGER_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def database_url(database: str, writes: int) -> str:
    """SQLite in a fresh folder, or a fresh PostgreSQL database named for this run (the
    two measured runs go side by side)."""
    if database == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp()}/ledger.db"
    import psycopg

    name = f"ledger_instructions_{writes}"
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlparse(SERVER)._replace(path=f"/{name}").geturl()


def run_writes(path: str, database: str, writes: int) -> None:
    """The measured process: set up, then ``writes`` writes."""
    from ledger_core.account import Account
    from ledger_core.commands import IssueKey
    from persistence.database import DatabaseConfig
    from service.ledger_service import LedgerService
    from service.settings import Settings

    settings = Settings(database=DatabaseConfig(database_url(database, writes)))
    service = LedgerService(dataclasses.replace(settings, rate_limit="off"))
    service.commands.save(*[Account.open(account_id=f"a{n}", currency="SGD", billing_mode="postpaid",
                                         invoice_mode="consolidated", credit_limit="1000000")
                            for n in range(ACCOUNTS)])
    service.projector.catch_up()
    if path in ("http", "read"):
        from api.app import create_app

        key = service.handle(IssueKey("service", name="bench")).secret
        client = create_app(service.settings, service=service).test_client()
        for n in range(writes if path == "read" else 0):
            answer = client.get(f"/v1/accounts/a{n % ACCOUNTS}/balance", headers={"Authorization": f"Bearer {key}"})
            if answer.status_code != 200:
                raise SystemExit(f"balance read answered {answer.status_code}: {answer.get_data(as_text=True)}")
        for n in range(writes if path == "http" else 0):
            answer = client.post(f"/v1/accounts/a{n % ACCOUNTS}/usage", headers={"Authorization": f"Bearer {key}"},
                                 json={"idempotency_key": f"k{n}", "product": "sms", "quantity": "1",
                                       "unit_price": "0.0042"})
            if answer.status_code != 201:
                raise SystemExit(f"usage post answered {answer.status_code}: {answer.get_data(as_text=True)}")
        return
    from consumer.ingest import Incoming, Ingestor, Outcome, Topics
    from consumer.store import ConsumerStore

    ingestor = Ingestor(service, ConsumerStore(service.commands), Topics("usage"), "bench")
    for start in range(0, writes, KAFKA_BATCH):
        batch = [Incoming("usage", 0, n, None, json.dumps({
            "schema_version": 1, "event_id": f"e{n}", "type": "usage", "account_id": f"a{n % ACCOUNTS}",
            "product": "sms", "amount": "0.0042", "application_id": "app-1", "unit": "message", "quantity": "1",
        }).encode()) for n in range(start, min(writes, start + KAFKA_BATCH))]
        if set(ingestor.handle_batch(batch)) != {Outcome.APPLIED}:
            raise SystemExit("a usage message was not applied")


def instructions(path: str, database: str, writes: int) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
               "--measure", path, "--database", database, "--writes", str(writes)]
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    found = re.search(r"Collected : (\d+)", out.stderr)
    if out.returncode != 0 or found is None:
        raise SystemExit(f"the measured process failed:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--path", choices=("http", "kafka", "read"), default="http")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--low", type=int, default=100)
    parser.add_argument("--high", type=int, default=600)
    parser.add_argument("--measure", choices=("http", "kafka", "read"), help=argparse.SUPPRESS)
    parser.add_argument("--writes", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        run_writes(args.measure, args.database, args.writes)
        return
    if shutil.which("valgrind") is None:
        sys.exit("bench/instructions.py counts with valgrind: apt-get install valgrind")
    if not 0 < args.low < args.high:
        sys.exit("give 0 < --low < --high")
    with ThreadPoolExecutor(2) as pool:  # counts do not depend on what else runs
        low, high = pool.map(lambda n: instructions(args.path, args.database, n), (args.low, args.high))
    per_write = (high - low) / (args.high - args.low)
    print(f"{args.path} on {args.database}: {low:,} instructions for {args.low} writes, {high:,} for {args.high}: "
          f"{per_write / 1e6:.3f} million instructions per write")


if __name__ == "__main__":
    main()
