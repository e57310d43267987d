"""Bank test: many clients move money over real HTTP, then the books must add up.

    .venv/bin/python bench/bank.py [--seconds 60] [--threads 8] [--accounts 20] [--workers 2]

Starts `ledger serve` with several worker processes on a fresh PostgreSQL database, drives
it with threads that recharge, post usage, reserve, settle and release at random over a
few accounts (so they collide), each request with an idempotency key and retried on a
lost answer. Then it checks that every answer was 2xx or a documented 4xx (never 5xx) and
that each account's current balance equals the sum of the operations the ledger accepted.
The CI run of the same check is tests/api/test_bank.py (shorter).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.loadgen import run_bank  # noqa: E402
from tests.serverproc import fresh_postgres_database, running_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    url = fresh_postgres_database("ledger_bank")
    with running_server(url, "public", workers=args.workers, log_path=Path("var/bank-server.log")) as server:
        report = run_bank(server.base, server.admin_key, accounts=args.accounts, threads=args.threads,
                          seconds=args.seconds)
    print(report.summary())
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
