"""A bank-style load over real HTTP, and the check that the books add up afterwards.

Threads pick accounts at random (few accounts, so writers collide on them and on the
read model), and recharge, post usage, reserve, settle and release. Every money-moving
request carries an idempotency key and is retried with it when its answer is lost or is a
5xx, as a careful client would. The report counts answers by status and compares each
account's current balance and reserved credits with what the ledger acknowledged.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests

RETRY_WINDOW_S = 60.0  # a careful client keeps retrying a lost answer this long (a restart takes seconds)
DOCUMENTED_4XX = {"insufficient_credits", "reservation_exists", "reservation_closed", "rate_limited",
                  "concurrent_modification"}
RETRIED = {409: "concurrent_modification", 429: "rate_limited"}


@dataclass
class Books:
    """What the ledger acknowledged, per account."""

    balance: dict[str, Decimal] = field(default_factory=dict)
    holds: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def move(self, account: str, amount: Decimal) -> None:
        with self.lock:
            self.balance[account] = self.balance.get(account, Decimal(0)) + amount


@dataclass
class Report:
    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    undocumented: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    operations: int = 0
    retries: int = 0
    seconds: float = 0.0

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    @property
    def ok(self) -> bool:
        return self.server_errors == 0 and not self.undocumented and not self.mismatches

    def summary(self) -> str:
        return (f"operations acknowledged {self.operations} in {self.seconds:.1f} s "
                f"({self.operations / max(self.seconds, 1e-9):.0f}/s), retries {self.retries}, "
                f"answers by status {dict(sorted(self.statuses.items()))}, 4xx codes {dict(self.codes)}, "
                f"5xx {self.server_errors}, undocumented {self.undocumented[:5]}, "
                f"books mismatches {self.mismatches[:5]}")


class Client:
    def __init__(self, base: str, key: str, report: Report, lock: threading.Lock) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"
        self.report = report
        self.lock = lock

    def post(self, path: str, body: dict[str, Any], key: str | None = None) -> tuple[int, dict[str, Any]]:
        """Posts until an answer other than a 5xx or a lost connection arrives."""
        return self.request("POST", path, body, key)

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        return self.request("GET", path)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None,
                key: str | None = None) -> tuple[int, dict[str, Any]]:
        """Sends until an answer other than a 5xx, a retryable 4xx (rate limited: after its
        Retry-After) or a lost connection arrives."""
        headers = {"Idempotency-Key": key} if key else {}
        give_up = time.monotonic() + RETRY_WINDOW_S
        attempt = 0
        while time.monotonic() < give_up:
            attempt += 1
            pause = min(0.05 * attempt, 1.0)
            try:
                response = self.session.request(method, self.base + path, json=body, headers=headers, timeout=30)
            except requests.RequestException:
                self._count(None, {}, retried=True)  # no answer: it may or may not have landed
                time.sleep(pause)
                continue
            payload = response.json() if response.content else {}
            code = payload.get("error", {}).get("code") if isinstance(payload, dict) else None
            retry = response.status_code >= 500 or (code is not None and RETRIED.get(response.status_code) == code)
            self._count(response.status_code, payload, retried=retry)
            if not retry:
                return response.status_code, payload
            time.sleep(float(response.headers.get("Retry-After") or pause))
        raise RuntimeError(f"no answer within {RETRY_WINDOW_S} s: {path}")

    def _count(self, status: int | None, payload: dict[str, Any], *, retried: bool) -> None:
        with self.lock:
            if status is not None:
                self.report.statuses[status] += 1
                if 400 <= status < 500:
                    code = payload.get("error", {}).get("code", "?")
                    self.report.codes[code] += 1
                    if code not in DOCUMENTED_4XX:
                        self.report.undocumented.append(f"{status} {code}: {payload}")
            if retried:
                self.report.retries += 1


def open_accounts(client: Client, count: int) -> list[str]:
    ids = [f"bank-{uuid.uuid4().hex[:8]}-{n}" for n in range(count)]
    for account in ids:
        status, body = client.post("/v1/accounts", {
            "account_id": account, "billing_mode": "prepaid", "invoice_mode": "consolidated", "currency": "SGD"})
        assert status == 201, body
    return ids


def _code(body: dict[str, Any]) -> str | None:
    return body.get("error", {}).get("code")


def _worker(client: Client, accounts: list[str], books: Books, deadline: float, seed: int,
            meanwhile_done: threading.Event) -> int:
    rng = random.Random(seed)
    acknowledged = 0
    mine: list[tuple[str, str, Decimal]] = []  # this thread's open holds
    while time.monotonic() < deadline or not meanwhile_done.is_set():
        account = rng.choice(accounts)
        roll = rng.random()
        key = uuid.uuid4().hex
        if roll < 0.25:
            amount = Decimal(rng.randint(100, 10_000)) / 100
            status, _ = client.post(f"/v1/accounts/{account}/recharges", {"amount": str(amount)}, key)
            if status in (200, 201):
                books.move(account, amount)
        elif roll < 0.6:
            amount = Decimal(rng.randint(1, 500_000)) / 1_000_000
            status, _ = client.post(f"/v1/accounts/{account}/usage",
                                    {"idempotency_key": key, "product": "sms", "amount": str(amount)})
            if status in (200, 201):
                books.move(account, -amount)
        elif roll < 0.8 or not mine:
            amount = Decimal(rng.randint(1, 300)) / 100
            status, body = client.post(f"/v1/accounts/{account}/reservations",
                                       {"reservation_id": key, "amount": str(amount)}, key)
            # The id is new: if it exists, a retry found this thread's own lost attempt.
            if status in (200, 201) or _code(body) == "reservation_exists":
                mine.append((account, key, amount))
        else:
            account, reservation, held = mine.pop(rng.randrange(len(mine)))
            if rng.random() < 0.6:
                final = (held * Decimal(rng.randint(0, 100)) / 100).quantize(Decimal("0.000001"))
                status, body = client.post(f"/v1/accounts/{account}/reservations/{reservation}/settle",
                                           {"amount": str(final), "product": "voice"}, key)
                # Only this thread closes its holds: closed already means its lost attempt landed.
                if status in (200, 201) or _code(body) == "reservation_closed":
                    books.move(account, -final)
            else:
                status, _ = client.post(f"/v1/accounts/{account}/reservations/{reservation}/release",
                                        {"reason": "cancelled"}, key)
        acknowledged += 1 if status < 400 else 0
    for account, reservation, held in mine:
        with books.lock:
            books.holds.setdefault(account, {})[reservation] = held
    return acknowledged


def run_bank(base: str, key: str, *, accounts: int, threads: int, seconds: float, seed: int = 7,
             meanwhile: Callable[[float], None] | None = None) -> Report:
    """``meanwhile(deadline)`` runs in the calling thread while the clients work (a killer, say);
    they work until the deadline and until it returns, so it is never left without load."""
    report, lock, books, meanwhile_done = Report(), threading.Lock(), Books(), threading.Event()
    setup = Client(base, key, report, lock)
    ids = open_accounts(setup, accounts)
    counts: list[int] = []
    started = time.monotonic()
    deadline = started + seconds

    def work(n: int) -> None:
        counts.append(_worker(Client(base, key, report, lock), ids, books, deadline, seed * 1000 + n, meanwhile_done))

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    try:
        if meanwhile is not None:
            meanwhile(deadline)
    finally:
        meanwhile_done.set()
    for thread in pool:
        thread.join()
    report.seconds = time.monotonic() - started
    report.operations = sum(counts)
    for account in ids:
        status, balance = setup.get(f"/v1/accounts/{account}/balance")  # rate limited too, after the load
        if status != 200:
            report.mismatches.append(f"{account}: the balance answered {status} {balance}")
            continue
        expected = books.balance.get(account, Decimal(0))
        held = sum(books.holds.get(account, {}).values(), Decimal(0))
        if Decimal(balance["current_balance"]) != expected or Decimal(balance["reserved_credits"]) != held:
            report.mismatches.append(f"{account}: balance {balance['current_balance']} expected {expected}, "
                                     f"reserved {balance['reserved_credits']} expected {held}")
    return report
