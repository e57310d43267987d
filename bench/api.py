"""Benchmark: the HTTP API as a real server process on PostgreSQL.

    .venv/bin/python bench/api.py [--accounts 10000] [--seconds 15] [--connections 4] [--workers 2]
                                  [--profile FILE [--profile-run reads|cold|warm|zipf|mixed]]

Creates a fresh database (LEDGER_BENCH_DATABASE_URL, default the local server), opens
the accounts in-process, starts `ledger serve`, then drives it with the asyncio load
generator in bench/http_load.py (nothing to install; its own CPU share is printed; each
client keeps its connection alive as an HTTP client library would):
balance reads (p50, p99), then usage posts in the load shapes of bench/shapes.py: cold
(uniform over all accounts, mostly each worker's first touch of an account), warm (a hot
set), zipf (a few accounts take most posts) and mixed (reserve, settle, release and usage
interleaved, each account's in order). It says what the database's sessions did meanwhile
(bench/pg_waits.py), measures PostgreSQL's single-row commit rate in
the same run and prints the ratios, prints each server worker's peak RSS, and checks the
books: every account's unbilled and reserved figures equal what the answered requests
booked, to the last digit; a cent off (or any non-2xx answer) fails the run.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cpu import CpuShare, children_of  # noqa: E402
from bench.http_load import Request, Result, run  # noqa: E402
from bench.pg_waits import Waits, WaitSampler  # noqa: E402
from bench.shapes import HOLD, SETTLED, UNIT_PRICE, Books, check_books, messages, picker  # noqa: E402
from ledger_core.account import Account  # noqa: E402
from ledger_core.commands import IssueKey  # noqa: E402
from persistence.database import DatabaseConfig  # noqa: E402
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


def open_accounts(url: str, count: int) -> tuple[list[str], str]:
    """The accounts, and the secret of a key the load sends (service role)."""
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


def start_server(url: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
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


@contextmanager
def sampled(master: int, profile: str | None) -> Iterator[None]:
    """With ``profile``, py-spy samples every server worker meanwhile (idle time too: a
    worker waiting on PostgreSQL shows where), each into ``profile.<pid>``."""
    if not profile:
        yield
        return
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    spies = [subprocess.Popen([py_spy, "record", "--rate", "200", "--idle", "--format", "raw", "--pid", str(pid),
                               "-o", f"{profile}.{pid}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for pid in children_of(master)]
    try:
        yield
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        for spy in spies:
            spy.wait(timeout=60)


def worker_peak_rss_mb(master: int) -> list[float]:
    """Peak resident memory (VmHWM) of each process the server's master started."""
    peaks = []
    for pid in children_of(master):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
        peaks.append(kb / 1024)
    return sorted(peaks)


def group_commit_batches(base: str) -> tuple[float, float]:
    """(batches, writes in them) over the server's workers, from its /metrics."""
    samples = dict(line.rsplit(" ", 1) for line in requests.get(f"{base}/metrics", timeout=10).text.splitlines()
                   if line.startswith("ledger_group_commit_batch_commands_"))
    return (float(samples.get("ledger_group_commit_batch_commands_count", 0)),
            float(samples.get("ledger_group_commit_batch_commands_sum", 0)))


def usage(account: str, key: str) -> Request:
    body = {"idempotency_key": key, "product": "sms", "quantity": "1", "unit_price": str(UNIT_PRICE)}
    return Request("POST", f"/v1/accounts/{account}/usage", body, (account, -UNIT_PRICE, Decimal(0)))


def posts(shape: str, ids: list[str], run_id: str, seed: int) -> Iterator[Request]:
    """Endless usage posts over ``ids`` in the shape, each with its own key."""
    pick = picker(shape, ids, random.Random(seed))
    for n in itertools.count():
        yield usage(pick(), f"{run_id}-{n}")


def mixed_lanes(ids: list[str], run_id: str, connections: int, events: int) -> list[Iterator[Request]]:
    """The mixed shape's messages as requests, each account's on one lane, in order (a
    settle after its reserve)."""
    lanes: list[list[Request]] = [[] for _ in range(connections)]
    index = {a: n for n, a in enumerate(ids)}
    for m in messages("mixed", ids, events, seed=11)[0]:
        a, kind = m["account_id"], m["type"]
        rid = f"{run_id}-{m.get('reservation_id', '')}"
        if kind == "usage":
            request = usage(a, f"{run_id}-{m['event_id']}")
        elif kind == "reserve":
            request = Request("POST", f"/v1/accounts/{a}/reservations", {"reservation_id": rid, "amount": str(HOLD)},
                              (a, Decimal(0), HOLD))
        elif kind == "settle":
            request = Request("POST", f"/v1/accounts/{a}/reservations/{rid}/settle",
                              {"amount": str(SETTLED), "product": "voice"}, (a, -SETTLED, -HOLD))
        else:
            request = Request("POST", f"/v1/accounts/{a}/reservations/{rid}/release", {"reason": "failed"},
                              (a, Decimal(0), -HOLD))
        lanes[index[a] % connections].append(request)
    return [iter(lane) for lane in lanes]


def reads(ids: list[str], seed: int) -> Iterator[Request]:
    rng = random.Random(seed)
    while True:
        yield Request("GET", f"/v1/accounts/{rng.choice(ids)}/balance")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--hot-accounts", type=int, default=1_000, help="working set of the warm run")
    parser.add_argument("--seconds", type=float, default=15, help="length of each measured run")
    parser.add_argument("--connections", type=int, default=4, help="clients sending at once")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--profile", metavar="FILE",
                        help="sample each server worker with py-spy during one run into FILE.<pid> (raw stacks)")
    parser.add_argument("--profile-run", choices=("reads", "cold", "warm", "zipf", "mixed"), default="cold",
                        help="the run --profile samples")
    args = parser.parse_args()

    url = fresh_database()
    t0 = time.perf_counter()
    ids, key = open_accounts(url, args.accounts)
    print(f"opened {len(ids)} accounts in {time.perf_counter() - t0:.1f} s")
    commits_per_s = commit_rate(url)
    process, base = start_server(url, args.workers)
    sampler = WaitSampler(url)
    n, books, answered = args.connections, Books(), []
    writes = lambda r: r.body is not None  # noqa: E731 - kept for the books
    try:
        run(base, key, reads(ids, 1), connections=n, seconds=3)  # warm-up: connections, plans
        cpu: dict[str, CpuShare] = {}
        waits: dict[str, Waits] = {}

        def measured(name: str, result: Callable[[], Result]) -> Result:
            cpu[name] = CpuShare(children_of(process.pid))
            cpu[name].start()
            with sampler.measuring() as waits[name], sampled(process.pid, args.profile if name == args.profile_run else None):
                done = result()
            cpu[name].stop()
            return done

        read = measured("reads", lambda: run(base, key, reads(ids, 2), connections=n, seconds=args.seconds))
        single = run(base, key, reads(ids, 3), connections=1, seconds=5)  # latency without queueing
        runs: dict[str, Result] = {}
        hot, s = ids[: args.hot_accounts], args.seconds
        runs["cold"] = measured("cold", lambda: run(base, key, posts("uniform", ids, "cold", 4), connections=n, seconds=s, keep=writes))
        runs["warmup"] = run(base, key, posts("uniform", hot, "warmup", 5), connections=n, seconds=5, keep=writes)
        runs["warm"] = measured("warm", lambda: run(base, key, posts("uniform", hot, "warm", 6), connections=n, seconds=s, keep=writes))
        runs["zipf"] = measured("zipf", lambda: run(base, key, posts("zipf", ids, "zipf", 7), connections=n, seconds=s, keep=writes))
        runs["mixed"] = measured("mixed", lambda: run(base, key, mixed_lanes(ids, "mixed", n, 200_000), connections=n, seconds=s, keep=writes))
        rss = worker_peak_rss_mb(process.pid)
        batches = group_commit_batches(base)
    finally:
        sampler.close()
        process.terminate()
        process.wait(timeout=20)

    print(f"server: {args.workers} gunicorn gevent workers; client: asyncio, {n} connections "
          f"(bench/http_load.py); {os.cpu_count()} cores shared by all")
    print(read.line(f"balance reads, {n} clients (saturating)", "target p99 < 5 ms"))
    print(single.line("balance reads, 1 client"))
    print(runs["cold"].line(f"usage posts, cold (uniform over {args.accounts} accounts)", "target >= 500/s"))
    print(runs["warm"].line(f"usage posts, warm ({args.hot_accounts} hot accounts)", "target >= 500/s"))
    print(runs["zipf"].line(f"usage posts, zipf s=1.1 over {args.accounts} accounts"))
    print(runs["mixed"].line("mixed: usage, reserve, settle, release"))
    for name, share in cpu.items():
        result = read if name == "reads" else runs[name]
        print(f"  CPU, {name}: " + share.line(result.seconds, result.requests, "server workers"))
        print(f"  {name}: " + waits[name].line())
    print(f"postgres single-row commits: {commits_per_s:,.0f}/s; requests/s over commits/s: "
          + ", ".join(f"{name} {r.per_s / commits_per_s:.3f}" for name, r in runs.items() if name != "warmup"))
    print("server workers' peak RSS: " + ", ".join(f"{mb:.0f} MB" for mb in rss))
    print(f"group commit: {batches[1]:,.0f} writes in {batches[0]:,.0f} batches "
          f"({batches[1] / max(batches[0], 1):.2f} per batch; LEDGER_GROUP_COMMIT_MAX_COMMANDS="
          f"{os.environ.get('LEDGER_GROUP_COMMIT_MAX_COMMANDS', 'default')})")
    for r in runs.values():
        answered.extend(r.answered)
    failed = [(tag, status, body[:200]) for tag, status, body in answered if not 200 <= status < 300]
    for tag, status, _ in answered:
        if 200 <= status < 300:
            books.add(tag[0], unbilled=tag[1], reserved=tag[2])
    errors = sum(r.errors + r.non_2xx for r in (read, single, *runs.values()))
    print(f"answers: {len(answered)} writes, {errors} errors or non-2xx" + (f", e.g. {failed[:3]}" if failed else ""))
    service = LedgerService(Settings(database=DatabaseConfig(url)))
    try:
        check_books(service, books, every=ids)  # raises if a cent is off
    finally:
        service.close()
    print(f"books: {len(ids)} accounts' unbilled and reserved figures equal what the answered writes booked: exact")
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
