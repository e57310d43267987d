"""Load shapes for the benchmarks, and the books they must leave (checked to the last digit).

- uniform: every account as likely;
- zipf: account of rank r with weight 1 / r^1.1, so a few take most of the traffic, as real
  senders do;
- mixed: usage, reserve, settle and release interleaved per account (on the zipf spread).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

SHAPES = ("uniform", "zipf", "mixed")
ZIPF_S = 1.1
UNIT_PRICE = Decimal("0.0042")
HOLD = Decimal("1.00")
SETTLED = Decimal("0.50")


@dataclass
class Books:
    """What the messages must leave on each account: unbilled (negative: owed) and reserved."""

    unbilled: dict[str, Decimal] = field(default_factory=dict)
    reserved: dict[str, Decimal] = field(default_factory=dict)

    def add(self, account: str, unbilled: Decimal = Decimal(0), reserved: Decimal = Decimal(0)) -> None:
        self.unbilled[account] = self.unbilled.get(account, Decimal(0)) + unbilled
        self.reserved[account] = self.reserved.get(account, Decimal(0)) + reserved


def messages(shape: str, ids: list[str], events: int, seed: int = 1) -> tuple[list[dict[str, str]], Books]:
    """``events`` usage messages of the shape, and the books they must leave."""
    if shape not in SHAPES:
        raise ValueError(f"shape is one of {', '.join(SHAPES)}")
    rng, books = random.Random(seed), Books()
    pick = picker(shape, ids, rng)
    open_holds: dict[str, list[str]] = {}
    out: list[dict[str, str]] = []
    for n in range(events):
        account = pick()
        base = {"event_id": f"ev-{n}", "account_id": account, "schema_version": 1}
        held = open_holds.get(account, [])
        roll = rng.random() if shape == "mixed" else 0.0
        if roll < 0.6:
            out.append({**base, "type": "usage", "product": "sms", "quantity": "1", "unit_price": str(UNIT_PRICE)})
            books.add(account, unbilled=-UNIT_PRICE)
        elif roll < 0.8 or not held:
            rid = f"r-{n}"
            out.append({**base, "type": "reserve", "reservation_id": rid, "amount": str(HOLD)})
            open_holds.setdefault(account, []).append(rid)
            books.add(account, reserved=HOLD)
        elif roll < 0.92:
            out.append({**base, "type": "settle", "reservation_id": held.pop(0), "amount": str(SETTLED),
                        "product": "voice"})
            books.add(account, unbilled=-SETTLED, reserved=-HOLD)
        else:
            out.append({**base, "type": "release", "reservation_id": held.pop(0), "reason": "failed"})
            books.add(account, reserved=-HOLD)
    return out, books


def picker(shape: str, ids: list[str], rng: random.Random):  # type: ignore[no-untyped-def]
    """A function that picks the next account: uniform, else Zipf (mixed spreads as zipf)."""
    if shape == "uniform":
        return lambda: rng.choice(ids)
    weights = list(itertools.accumulate(1 / (rank ** ZIPF_S) for rank in range(1, len(ids) + 1)))
    return lambda: rng.choices(ids, cum_weights=weights)[0]


def check_books(service, books: Books, every: list[str] = ()) -> None:  # type: ignore[no-untyped-def]
    """Raises (the benchmark fails loudly) unless every account's figures are what the
    messages must leave, to the last digit; ``every`` account listed, also those the
    books never mention (they must show nothing)."""
    wrong = []
    for account in sorted(set(books.unbilled) | set(books.reserved) | set(every)):
        figures = service.account_row(account).figures
        want = (books.unbilled.get(account, Decimal(0)), books.reserved.get(account, Decimal(0)))
        if (figures.expecting_invoice, figures.reserved) != want:
            wrong.append(f"{account}: unbilled {figures.expecting_invoice} reserved {figures.reserved}, want {want}")
    if wrong:
        raise SystemExit("the books are off:\n" + "\n".join(wrong[:20]))


def iter_shapes() -> Iterator[str]:
    yield from SHAPES
