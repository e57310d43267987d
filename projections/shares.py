"""Splitting a replay of the log between processes: each applies the events of its share
of the accounts, with those of the orders and subscriptions they own, and only moves its
position past the others (which it mostly does not even read).

Every read-model row belongs to one account (its figures, balance details, holds, bills,
invoices, orders, subscriptions) and is changed only by that account's events and those
of aggregates it owns. One process applies all of them, in log order, so the shares
together write the rows one process would. Orders and subscriptions name their account
in their first event; their later events follow it there.

A share is a range of share keys (a hash of the account's id, persistence/log_shares.py),
cut where the accounts' events add up to equal parts, so the database sends each process
its own accounts' events only. An account is never split: a large one is listed on its own
and the ranges are cut over the rest.
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
MIN_KEY, MAX_KEY = -(2**63), 2**63 - 1
ACCOUNT_TOPICS = frozenset(get_topic(getattr(Account, event_type)) for event_type in ACCOUNT_EVENT_TYPES)


@dataclass
class Share:
    """Share ``index`` of ``count``: the accounts whose key lies in ``low``..``high`` and
    are not ``listed`` on their own, and those listed for it (``own``). ``owner`` places
    every account of the log when the split was planned (orders and subscriptions follow it)."""

    index: int
    count: int
    low: int
    high: int
    owner: Mapping[UUID, int]
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
        index = self.owner.get(account)
        if index is None:
            raise InvariantViolation(f"account {account} has events in the replay but not in its plan")
        return index == self.index


def plan(loads: Iterable[tuple[UUID, int, int]], count: int) -> list[Share]:
    """``count`` shares of the accounts, from (account, share key, events) of each. Accounts
    with more than a quarter of an equal part are listed on their own (the largest first, each
    to the share with the fewest events so far): cut apart by a range, one could leave its
    share far from its part. The key ranges are cut over the rest, each share taking keys
    until it is nearest its part: within half an account of it, an eighth of a part at most
    (the last share takes what is left)."""
    if not 1 <= count <= MAX_SHARES:
        raise ValueError(f"shares must be 1..{MAX_SHARES}")
    accounts = sorted(loads, key=lambda load: (load[1], load[0]))
    part = sum(events for _, _, events in accounts) / count
    totals = [0] * count
    owner: dict[UUID, int] = {}
    own: list[list[UUID]] = [[] for _ in range(count)]
    for account, _, events in sorted((a for a in accounts if a[2] > part / 4), key=lambda a: (-a[2], a[0])):
        index = min(range(count), key=lambda i: (totals[i], i))
        own[index].append(account)
        owner[account] = index
        totals[index] += events
    listed = tuple(sorted(owner))
    bounds, index, previous = [MIN_KEY], 0, None
    for account, key, events in (a for a in accounts if a[0] not in owner):
        # The next share starts here once this account would take this one past its part by
        # more than half its events (never between equal keys).
        while index < count - 1 and totals[index] + events / 2 >= part and key != previous:
            bounds.append(key)
            index += 1
        owner[account] = index
        totals[index] += events
        previous = key
    bounds += [MAX_KEY + 1] * (count + 1 - len(bounds))
    return [Share(i, count, bounds[i], bounds[i + 1] - 1, owner, tuple(own[i]), listed) for i in range(count)]
