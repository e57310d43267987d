"""Benchmark: the HTTP API as a real server process on PostgreSQL.

    .venv/bin/python bench/api.py [--accounts 10000] [--reads 20000] [--posts 10000] [--threads 4]

Creates a fresh database (LEDGER_BENCH_DATABASE_URL, default the local server), opens
the accounts in-process, starts `ledger serve`, then measures from 4 client threads:
balance reads (p50, p99) and usage posts (one per request, per second). It also measures
PostgreSQL's single-row commit rate in the same run and prints the ratio.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from commands.persistence import DatabaseConfig  # noqa: E402
from ledger_core.account import Account  # noqa: E402
from service.ledger_service import LedgerService  # noqa: E402
from service.settings import Settings  # noqa: E402

SERVER = os.environ.get("LEDGER_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BENCH_DATABASE = "ledger_bench"
OPEN_BATCH = 500


def fresh_database() -> str:
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{BENCH_DATABASE}"')
    return urlparse(SERVER)._replace(path=f"/{BENCH_DATABASE}").geturl()


def open_accounts(url: str, count: int) -> list[str]:
    service = LedgerService(Settings(database=DatabaseConfig(url)))
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
    return ids


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


def start_server(url: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LEDGER_DATABASE_URL": url, "LEDGER_HTTP_WORKERS": str(workers),
           "LEDGER_DATABASE_POOL_SIZE": "10"}
    process = subprocess.Popen([sys.executable, "-m", "entrypoints.cli", "--log-level", "WARNING", "serve",
                                "--port", str(port)], env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            requests.get(f"{base}/healthz", timeout=1)
            return process, base
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


def hammer(threads: int, total: int, call: Callable[[requests.Session, int], None]) -> tuple[float, list[float]]:
    """Runs `total` calls over `threads` threads; returns (wall seconds, per-call latencies in ms)."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    gate = threading.Barrier(threads + 1)

    def worker(n: int) -> None:
        session = requests.Session()
        gate.wait()
        for i in range(n, total, threads):
            t0 = time.perf_counter()
            call(session, i)
            latencies[n].append((time.perf_counter() - t0) * 1000)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    gate.wait()
    started = time.perf_counter()
    for t in pool:
        t.join()
    return time.perf_counter() - started, [x for lane in latencies for x in lane]


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=1000)[int(p * 10) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    url = fresh_database()
    t0 = time.perf_counter()
    ids = open_accounts(url, args.accounts)
    print(f"opened {len(ids)} accounts in {time.perf_counter() - t0:.1f} s")
    commits_per_s = commit_rate(url)
    process, base = start_server(url, args.workers)
    rng = random.Random(7)
    targets = [rng.choice(ids) for _ in range(max(args.reads, args.posts))]
    errors: list[int] = []
    try:
        def read(session: requests.Session, i: int) -> None:
            response = session.get(f"{base}/v1/accounts/{targets[i]}/balance", timeout=10)
            if response.status_code != 200:
                errors.append(response.status_code)

        def post(session: requests.Session, i: int) -> None:
            response = session.post(f"{base}/v1/accounts/{targets[i]}/usage", timeout=10, json={
                "idempotency_key": f"bench-{i}", "product": "sms", "quantity": "1", "unit_price": "0.0042"})
            if response.status_code != 201:
                errors.append(response.status_code)

        hammer(args.threads, 500, read)  # warm-up: connections, caches
        read_s, read_ms = hammer(args.threads, args.reads, read)
        post_s, post_ms = hammer(args.threads, args.posts, post)
    finally:
        process.terminate()
        process.wait(timeout=20)

    posts_per_s = args.posts / post_s
    print(f"server: {args.workers} gunicorn workers x 8 threads; clients: {args.threads} threads; {os.cpu_count()} cores")
    print(f"balance reads : {args.reads} in {read_s:.1f} s = {args.reads / read_s:,.0f}/s; "
          f"p50 {percentile(read_ms, 50):.2f} ms, p99 {percentile(read_ms, 99):.2f} ms (target p99 < 5 ms)")
    print(f"usage posts   : {args.posts} in {post_s:.1f} s = {posts_per_s:,.0f}/s; "
          f"p50 {percentile(post_ms, 50):.2f} ms, p99 {percentile(post_ms, 99):.2f} ms (target >= 500/s)")
    print(f"postgres single-row commits: {commits_per_s:,.0f}/s; usage posts / commit rate = {posts_per_s / commits_per_s:.2f}")
    print(f"errors: {len(errors)} {sorted(set(errors))}")
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
