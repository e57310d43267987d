"""Splitting a replay of the log between processes: each applies the events of its share
of the accounts, with those of the orders and subscriptions they own, and only moves its
position past the others.

Every read-model row belongs to one account (its figures, balance details, holds, bills,
invoices, orders, subscriptions) and is changed only by that account's events and those
of aggregates it owns. One process applies all of them, in log order, so the shares
together write the rows one process would. Orders and subscriptions name their account
in their first event; their later events follow it there.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from ledger_core.account import ACCOUNT_EVENT_TYPES, Account, account_uuid
from ledger_core.errors import InvariantViolation

MAX_SHARES = 64
ACCOUNT_TOPICS = frozenset(get_topic(getattr(Account, event_type)) for event_type in ACCOUNT_EVENT_TYPES)


def balanced(events_per_account: Mapping[UUID, int], count: int) -> dict[UUID, int]:
    """Each account's share, the largest accounts first to the share with the fewest events
    so far: one account's events cannot be split, so a very large one gets a share of its own
    and the rest spread over the others."""
    if not 1 <= count <= MAX_SHARES:
        raise ValueError(f"shares must be 1..{MAX_SHARES}")
    loads = [(0, index) for index in range(count)]
    owner: dict[UUID, int] = {}
    for account, events in sorted(events_per_account.items(), key=lambda item: (-item[1], item[0])):
        load, index = heapq.heappop(loads)
        owner[account] = index
        heapq.heappush(loads, (load + events, index))
    return owner


@dataclass
class Share:
    """One process's part of a replay: share ``index`` of ``count``. Accounts missing from
    ``owner`` (opened after the split was planned) are placed by their id."""

    index: int
    count: int
    owner: Mapping[UUID, int]
    _account_of: dict[UUID, UUID] = field(default_factory=dict)  # an order or subscription -> its account

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_SHARES or not 0 <= self.index < self.count:
            raise ValueError(f"share {self.index} of {self.count}: shares are 1..{MAX_SHARES}")

    @property
    def name_suffix(self) -> str:
        return f"#{self.index + 1}/{self.count}"

    def events(self, notifications: Sequence[Notification], wanted: Iterable[str],
               decode: Callable[[Notification], Any]) -> list[Any | None]:
        """The domain events this share applies, None for those it only tracks. An Account
        event's account is its originator, known without decoding it."""
        wanted = set(wanted)
        chosen: list[Any | None] = []
        for n in notifications:
            if n.topic not in wanted:
                chosen.append(None)
            elif n.topic in ACCOUNT_TOPICS:
                chosen.append(decode(n) if self._is_mine(n.originator_id) else None)
            else:
                event = decode(n)
                chosen.append(event if self._is_mine(self._owner_account(n.originator_id, event)) else None)
        return chosen

    def _owner_account(self, aggregate_id: UUID, event: Any) -> UUID:
        account_id = getattr(event, "account_id", None)
        if isinstance(account_id, str):
            self._account_of[aggregate_id] = account_uuid(account_id)
        account = self._account_of.get(aggregate_id)
        if account is None:
            raise InvariantViolation(f"{type(event).__qualname__} of {aggregate_id} names no account, nor did an "
                                     "earlier event of it: the replay cannot tell which process applies it")
        return account

    def _is_mine(self, account: UUID) -> bool:
        index = self.owner.get(account)
        return (account.int % self.count if index is None else index) == self.index
