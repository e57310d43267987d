"""Splitting a replay of the log between processes: each applies the events of its share
of the accounts, with those of the orders and subscriptions they own, and only moves its
position past the others (which it mostly does not even read).

Every read-model row belongs to one account (its figures, balance details, holds, bills,
invoices, orders, subscriptions) and is changed only by that account's events and those
of aggregates it owns. One process applies all of them, in log order, so the shares
together write the rows one process would. Orders and subscriptions name their account
in their first event; their later events follow it there.

A share is a range of share keys (``share_key``: the account id's first bytes, which the
database computes alike, persistence/log_shares.py), cut where the accounts' events add up
to equal parts, so the database sends each process its own accounts' events only. An
account is never split: a large one is listed on its own and the ranges are cut over the
rest. Accounts opened after the split was planned fall in a range like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from ledger_core.account import ACCOUNT_EVENT_TYPES, Account, account_uuid
from ledger_core.errors import InvariantViolation
from persistence.log_shares import ShareFilter

MAX_SHARES = 64
LISTED_PART = 4  # accounts with more than 1/4 of a share's part of the events are placed on their own
MIN_KEY, MAX_KEY = -(2**63), 2**63 - 1
ACCOUNT_TOPICS = frozenset(get_topic(getattr(Account, event_type)) for event_type in ACCOUNT_EVENT_TYPES)


def share_key(aggregate_id: UUID) -> int:
    """The first 8 bytes of the id, as a signed 64-bit number (persistence/log_shares.py
    SHARE_KEY is the same in SQL)."""
    return int.from_bytes(aggregate_id.bytes[:8], "big", signed=True)


@dataclass
class Share:
    """Share ``index`` of ``count``: the accounts whose key lies in ``low``..``high`` and
    are not ``listed`` on their own, and those listed for it (``own``)."""

    index: int
    count: int
    low: int
    high: int
    own: tuple[UUID, ...] = ()
    listed: tuple[UUID, ...] = ()
    _account_of: dict[UUID, UUID] = field(default_factory=dict)  # an order or subscription -> its account

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_SHARES or not 0 <= self.index < self.count:
            raise ValueError(f"share {self.index} of {self.count}: shares are 1..{MAX_SHARES}")

    @property
    def name_suffix(self) -> str:
        return f"#{self.index + 1}/{self.count}"

    def filter(self, topics: Iterable[str]) -> ShareFilter:
        """What the database sends this share of the projection's ``topics``."""
        wanted = set(topics)
        return ShareFilter(shared=tuple(sorted(wanted - ACCOUNT_TOPICS)), keyed=tuple(sorted(wanted & ACCOUNT_TOPICS)),
                           low=self.low, high=self.high, own=self.own, listed=self.listed)

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
        """The rule the database applies (persistence/log_shares.py select_share_window)."""
        if account in self.listed:
            return account in self.own
        return self.low <= share_key(account) <= self.high


def plan(events_per_account: Mapping[UUID, int], count: int) -> list[Share]:
    """``count`` shares of the accounts. Those with more than 1/LISTED_PART of an equal part
    of the events are listed on their own (the largest first, each to the share with the
    fewest events so far): cut apart by a range, one could leave its share far from its
    part. The key ranges are cut over the rest, each share taking keys until it is nearest
    its part: within half an account of it (the last share takes what is left)."""
    if not 1 <= count <= MAX_SHARES:
        raise ValueError(f"shares must be 1..{MAX_SHARES}")
    part = sum(events_per_account.values()) / count
    totals = [0] * count
    own: list[list[UUID]] = [[] for _ in range(count)]
    listed = sorted((a for a, events in events_per_account.items() if events > part / LISTED_PART),
                    key=lambda a: (-events_per_account[a], a))
    for account in listed:
        index = min(range(count), key=lambda i: (totals[i], i))
        own[index].append(account)
        totals[index] += events_per_account[account]
    keyed = sorted((share_key(a), a) for a in events_per_account.keys() - set(listed))
    bounds, index, previous = [MIN_KEY], 0, None
    for key, account in keyed:
        events = events_per_account[account]
        # The next share starts here once this account would take this one past its part by
        # more than half its events (never between equal keys).
        while index < count - 1 and totals[index] + events / 2 >= part and key != previous:
            bounds.append(key)
            index += 1
        totals[index] += events
        previous = key
    bounds += [MAX_KEY + 1] * (count + 1 - len(bounds))
    return [Share(i, count, bounds[i], bounds[i + 1] - 1, tuple(own[i]), tuple(sorted(listed)))
            for i in range(count)]
