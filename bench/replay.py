"""Benchmark: rebuilding the read models from 1M events, and as-of queries on a long account.

    .venv/bin/python bench/replay.py [--accounts 1000] [--events-per-account 900] [--big-account-events 100000]
                                     [--processes 2] [--reuse]

Fills a fresh PostgreSQL database (LEDGER_BENCH_DATABASE_URL, default the local server)
through the Account aggregate (recharges, usage, holds settled; every event chained and
audited as in production), then times `rebuild` from event 1 in one process and split
between ``--processes`` (events/s; target >= 40,000), and as-of figures for random points
of an account with 100k events (target < 200 ms with snapshots), checking each against a
full replay without snapshots. After each rebuild it checks the books: every account's
figures in the rebuilt read model equal the Account aggregate's, loaded through the write
side, to the last digit; a digit off fails the run.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import psycopg
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from commands.unit_of_work import created  # noqa: E402
from ledger_core.account import Account, account_uuid  # noqa: E402
from ledger_core.money import Money  # noqa: E402
from ledger_core.usage import UsageLine  # noqa: E402
from persistence.database import DatabaseConfig  # noqa: E402
from projections.rows import EventFilter  # noqa: E402
from service.history import figures_as_of  # noqa: E402
from service.ledger_service import LedgerService  # noqa: E402
from service.rebuild import rebuild  # noqa: E402
from service.settings import Settings  # noqa: E402

SERVER = os.environ.get("LEDGER_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASE = "ledger_replay"
EVENTS_PER_SAVE = 2_000  # events handed to one save() call (one transaction)
BIG_ACCOUNT = "big-account"
MAX_ACCOUNTS = 100_000  # checked at the end


def database(reuse: bool) -> tuple[str, bool]:
    """The bench database URL, and whether it still has to be filled."""
    with psycopg.connect(SERVER, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
        if not (reuse and exists):
            conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    return urlparse(SERVER)._replace(path=f"/{DATABASE}").geturl(), not (reuse and exists)


def grow(account: Account, events: int, rng: random.Random, now: object) -> None:
    """Adds about ``events`` events: recharges, usage, and holds that get settled."""
    sgd = "SGD"
    added = 0
    while added < events:
        roll = rng.random()
        if roll < 0.1:
            account.recharge(Money.of("50", sgd), reference="bench", method="card")
            added += 1
        elif roll < 0.9:
            account.record_usage(Money.of(f"0.{rng.randint(1, 999999):06d}", sgd),
                                 UsageLine("sms", application_id="app", app_key="AK"), unit_price=None,
                                 occurred_at=now, idempotency_key=f"k{account.version}")
            added += 1
        else:
            rid = f"h{account.version}"
            account.reserve(Money.of("0.5", sgd), reservation_id=rid, expires_at=None)
            account.settle(rid, Money.of("0.25", sgd), UsageLine("call"), now=now)
            added += 2


def fill(service: LedgerService, accounts: int, per_account: int, big: int) -> int:
    rng = random.Random(11)
    ledger = service.commands
    now = ledger.clock()
    plan = [(f"acct-{n:05d}", per_account) for n in range(accounts)] + [(BIG_ACCOUNT, big)]
    with tqdm(total=accounts * per_account + big, desc="writing events", unit="events") as bar:
        for account_id, total in plan:
            account = Account.open(account_id=account_id, currency="SGD", billing_mode="postpaid",
                                   invoice_mode="consolidated", credit_limit="100000000")
            written = 1
            while written < total:
                grow(account, min(EVENTS_PER_SAVE, total - written), rng, now)
                before = written
                written = account.version
                ledger.save(account)
                bar.update(written - before)
    return ledger.recorder.max_notification_id() or 0


def check_books(service: LedgerService) -> int:
    """Raises (the benchmark fails loudly) unless every account's figures in the read model
    equal those of its Account aggregate, to the last digit; returns how many were checked."""
    accounts = [a for a in created(service.commands, Account.AccountOpened, MAX_ACCOUNTS) if isinstance(a, Account)]
    wrong = [f"{a.account_id}: read model {row.figures}, events {a.figures}" for a in accounts
             if (row := service.account_row(a.account_id)).figures != a.figures]
    if wrong or not accounts:
        raise SystemExit("the books are off:\n" + "\n".join(wrong[:20] or ["no account found"]))
    return len(accounts)


def as_of_latencies(service: LedgerService, samples: int) -> tuple[list[float], float]:
    ledger = service.commands
    versions = ledger.account(BIG_ACCOUNT).version
    first = service.view.events(EventFilter(BIG_ACCOUNT), 1)[0].position
    last = service.account_row(BIG_ACCOUNT).position
    rng = random.Random(5)
    timings = []
    for _ in range(samples):
        row = service.view.events(EventFilter(BIG_ACCOUNT, after_position=rng.randint(first, last - 1)), 1)[0]
        started = time.perf_counter()
        result = figures_as_of(service, BIG_ACCOUNT, position=row.position)
        timings.append((time.perf_counter() - started) * 1000)
        assert result.version == row.version
    # The same question without snapshots: a replay from version 1, to compare and to check.
    snapshots, ledger.repository.snapshot_store = ledger.repository.snapshot_store, None
    started = time.perf_counter()
    full = ledger.repository.get(account_uuid(BIG_ACCOUNT), version=versions)
    full_ms = (time.perf_counter() - started) * 1000
    ledger.repository.snapshot_store = snapshots
    assert full.figures == figures_as_of(service, BIG_ACCOUNT, position=10**15).figures
    return timings, full_ms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--events-per-account", type=int, default=900)
    parser.add_argument("--big-account-events", type=int, default=100_000)
    parser.add_argument("--as-of-samples", type=int, default=30)
    parser.add_argument("--reuse", action="store_true", help="keep the events of an earlier run")
    parser.add_argument("--processes", type=int, default=2, help="the split rebuild, measured after one process's")
    args = parser.parse_args()

    url, empty = database(args.reuse)
    service = LedgerService(Settings(database=DatabaseConfig(url, pool_size=4)))
    try:
        if empty:
            t0 = time.perf_counter()
            total = fill(service, args.accounts, args.events_per_account, args.big_account_events)
            print(f"wrote {total:,} events in {time.perf_counter() - t0:.0f} s (aggregate + audit chain)")
        total = service.commands.recorder.max_notification_id() or 0
        alone = 0.0
        for processes in sorted({1, args.processes}):
            with tqdm(total=total, desc=f"rebuilding read models, {processes} process(es)", unit="events") as bar:
                replayed = rebuild(service, progress=lambda _position, events: bar.update(events), processes=processes)
            alone = alone or replayed.events_per_s
            print(f"rebuild from event 1, {processes} process(es): {replayed.events:,} events in {replayed.seconds:.1f} s"
                  f" = {replayed.events_per_s:,.0f} events/s ({replayed.events_per_s / alone:.2f}x one process; "
                  "target >= 40,000)")
            print(f"books: {check_books(service):,} accounts' rebuilt figures equal their aggregates': exact")
        timings, full_ms = as_of_latencies(service, args.as_of_samples)
        print(f"as-of figures, account with {args.big_account_events:,} events, {len(timings)} random points: "
              f"p50 {statistics.median(timings):.1f} ms, max {max(timings):.1f} ms (target < 200 ms); "
              f"full replay without snapshots {full_ms:.0f} ms ({full_ms / statistics.median(timings):.0f}x)")
    finally:
        service.close()


if __name__ == "__main__":
    main()
