"""Benchmark: the HTTP API as a real server process on PostgreSQL.

    .venv/bin/python bench/api.py [--accounts 10000] [--seconds 15] [--threads 4] [--workers 4]

Creates a fresh database (LEDGER_BENCH_DATABASE_URL, default the local server), opens
the accounts in-process, starts `ledger serve`, then drives it with wrk (4 threads, 4
connections; a C client, so the load generator takes little of the 2 cores): balance
reads (p50, p99) and usage posts (one per request, per second), cold (uniform over all
accounts, mostly each worker's first touch of an account) and warm (a hot set). It also
measures PostgreSQL's single-row commit rate in the same run and prints the ratios, and
checks the books: the sum booked equals the accepted posts times their price.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger_core.account import Account  # noqa: E402
from ledger_core.commands import IssueKey  # noqa: E402
from persistence.database import DatabaseConfig  # noqa: E402
from service.ledger_service import LedgerService  # noqa: E402
from service.settings import Settings  # noqa: E402

SERVER = os.environ.get("LEDGER_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BENCH_DATABASE = "ledger_bench"
OPEN_BATCH = 500
PRICE = Decimal("0.0042")
KEY = [""]  # the bench key's secret, once made  # wrk_usage.lua posts quantity 1 at this unit price


def fresh_database() -> str:
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{BENCH_DATABASE}"')
    return urlparse(SERVER)._replace(path=f"/{BENCH_DATABASE}").geturl()


def open_accounts(url: str, count: int) -> tuple[list[str], str]:
    """The accounts, and the secret of a key wrk's scripts send (service role)."""
    service = LedgerService(Settings(database=DatabaseConfig(url)))
    key = service.commands.handle(IssueKey("service", name="bench")).secret
    ids = [f"bench-{n:05d}" for n in range(count)]
    for start in range(0, count, OPEN_BATCH):
        accounts = [
            Account.open(account_id=a, currency="SGD", billing_mode="postpaid", invoice_mode="consolidated",
                         credit_limit="1000000")
            for a in ids[start : start + OPEN_BATCH]
        ]
        service.commands.save(*accounts)
    service.projector.catch_up()
    service.close()
    return ids, key


def commit_rate(url: str, seconds: float = 3.0) -> float:
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_commit (n bigint)")
        conn.commit()
        done, deadline = 0, time.perf_counter() + seconds
        started = time.perf_counter()
        while time.perf_counter() < deadline:
            conn.execute("INSERT INTO bench_commit VALUES (%s)", (done,))
            conn.commit()
            done += 1
        return done / (time.perf_counter() - started)


def start_server(url: str, workers: int, threads: int) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # One key drives the whole load: the per-key rate limit would answer most of it 429.
    env = {**os.environ, "LEDGER_DATABASE_URL": url, "LEDGER_HTTP_WORKERS": str(workers),
           "LEDGER_DATABASE_POOL_SIZE": "10", "LEDGER_RATE_LIMIT": "off"}
    process = subprocess.Popen([sys.executable, "-m", "entrypoints.cli", "--log-level", "WARNING", "serve",
                                "--port", str(port)], env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                return process, base
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


def wrk(base: str, script: str, seconds: int, threads: int, *args: str) -> dict[str, float]:
    """Runs wrk (C, so the client costs little CPU) and returns its WRK_RESULT line as numbers."""
    command = ["wrk", f"-t{threads}", f"-c{threads}", f"-d{seconds}s", "-s", str(ROOT / "bench" / script), base,
               "--", *args]
    env = {**os.environ, "WRK_REPORT": str(ROOT / "bench" / "wrk_report.lua"), "LEDGER_BENCH_KEY": KEY[0]}
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRK_RESULT"))
    result = {k: float(v) for k, v in (pair.split("=") for pair in line.split()[1:])}
    result["per_s"] = result["requests"] / result["seconds"]
    return result


def booked(url: str) -> tuple[int, Decimal]:
    """How many usage rows the read model holds, and what they add up to."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT COUNT(*), COALESCE(-SUM(amount), 0) FROM rm_transactions WHERE type = 'Expense'").fetchone()
    assert row is not None
    return int(row[0]), Decimal(row[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--hot-accounts", type=int, default=1_000, help="working set of the warm run")
    parser.add_argument("--seconds", type=int, default=15, help="length of each measured run")
    parser.add_argument("--threads", type=int, default=4, help="client threads (and connections)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--server-threads", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/api.py drives the server with wrk: apt-get install wrk")

    url = fresh_database()
    t0 = time.perf_counter()
    ids, KEY[0] = open_accounts(url, args.accounts)
    print(f"opened {len(ids)} accounts in {time.perf_counter() - t0:.1f} s")
    commits_per_s = commit_rate(url)
    process, base = start_server(url, args.workers, args.server_threads)
    try:
        wrk(base, "wrk_balance.lua", 3, args.threads, str(args.accounts))  # warm-up: connections, plans
        reads = wrk(base, "wrk_balance.lua", args.seconds, args.threads, str(args.accounts))
        single = wrk(base, "wrk_balance.lua", 5, 1, str(args.accounts))  # latency without queueing
        cold = wrk(base, "wrk_usage.lua", args.seconds, args.threads, str(args.accounts), "cold")
        warmup = wrk(base, "wrk_usage.lua", 10, args.threads, str(args.hot_accounts), "warmup")
        hot = wrk(base, "wrk_usage.lua", args.seconds, args.threads, str(args.hot_accounts), "hot")
    finally:
        process.terminate()
        process.wait(timeout=20)

    posted = sum(int(r["requests"] - r["non2xx"]) for r in (cold, warmup, hot))
    print(f"server: {args.workers} gunicorn gevent workers; "
          f"client: wrk, {args.threads} threads/connections; {os.cpu_count()} cores shared by all")
    show(f"balance reads, {args.threads} clients (saturating)", reads, "target p99 < 5 ms")
    show("balance reads, 1 client", single, "")
    show(f"usage posts, cold (uniform over {args.accounts} accounts: mostly a worker's first touch)", cold, "")
    show(f"usage posts, warm ({args.hot_accounts} hot accounts)", hot, "target >= 500/s")
    print(f"postgres single-row commits: {commits_per_s:,.0f}/s; usage posts/s over commits/s: "
          f"cold {cold['per_s'] / commits_per_s:.3f}, warm {hot['per_s'] / commits_per_s:.3f}")
    errors = sum(r["non2xx"] + r["errors"] for r in (reads, single, cold, warmup, hot))
    rows, total = booked(url)
    in_flight = rows - posted  # requests a run cut off after the server had booked them
    exact = total == rows * PRICE and 0 <= in_flight <= 3 * args.threads
    print(f"books: {rows} usage rows (wrk saw {posted} answered, {in_flight} cut off in flight) "
          f"adding up to {total} = {rows} x {PRICE}: {'exact' if exact else 'MISMATCH'}")
    print(f"errors: {errors:.0f}")
    if errors or not exact:
        sys.exit(1)


def show(name: str, r: dict[str, float], target: str) -> None:
    print(f"{name}: {r['requests']:.0f} in {r['seconds']:.1f} s = {r['per_s']:,.0f}/s; "
          f"p50 {r['p50_ms']:.2f} ms, p90 {r['p90_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms {('(' + target + ')') if target else ''}")


if __name__ == "__main__":
    main()
