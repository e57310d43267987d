"""Credits held for transactions under way (reservations): what the Account keeps of each."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

MAX_OPEN_HOLDS = 10_000  # per account; a snapshot carries them all


@dataclass(frozen=True)
class Hold:
    amount: Decimal
    expires_at: datetime | None  # None: held until settled or released

    def __deepcopy__(self, memo: dict[int, Any]) -> Hold:
        return self  # frozen, of immutable values

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


def expired_holds(holds: Mapping[str, Hold], now: datetime) -> list[str]:
    """The ids of the holds whose expiry has passed by ``now``, in the order they were made."""
    return [reservation_id for reservation_id, hold in holds.items() if hold.expired(now)]
