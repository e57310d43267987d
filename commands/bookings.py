"""What a command answers: the movement it booked and where it landed in the log, with the
account's figures right after it; and the clock commands read the time from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

from ledger_core.account import Account
from ledger_core.figures import Figures

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Standing:
    """An account's figures right after a write, from the aggregate that made it: what the
    write's answer shows, so a committed write never depends on the read model to answer."""

    currency: str
    figures: Figures
    version: int
    as_of: datetime

    @classmethod
    def of(cls, account: Account) -> Standing:
        return cls(account.currency, account.figures, account.version, account.modified_on)


@dataclass(frozen=True)
class Booking:
    """What a command did: the movement it booked (if any) and where it landed in the log."""

    account_id: str
    position: int | None  # notification id of the last event written; None if nothing was written
    transaction_no: str | None = None
    amount: Decimal | None = None
    replayed: bool = False  # a repeat of an earlier request: nothing new was written
    invoice_id: str | None = None  # the invoice the command issued, if any (not known on a replay)
    after: Standing | None = None  # the account once written; None on a replay or when nothing was written
