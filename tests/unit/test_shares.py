"""Splitting a replay into shares: balanced by events, every account in exactly one share,
and an order's events follow the account its first event names."""

from __future__ import annotations

from types import SimpleNamespace
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Notification

from ledger_core.account import Account, account_uuid
from ledger_core.errors import InvariantViolation
from projections.shares import ACCOUNT_TOPICS, MAX_SHARES, Share, balanced

USAGE = next(t for t in ACCOUNT_TOPICS if t.endswith("UsageRecorded"))
ORDER = "ledger_core.order:Order.Paid"


def test_a_very_large_account_gets_a_share_of_its_own_and_the_rest_spread_evenly():
    big, small = uuid4(), [uuid4() for _ in range(9)]
    owner = balanced({big: 1_000, **{a: 10 + n for n, a in enumerate(small)}}, 3)
    assert set(owner) == {big, *small}
    assert [a for a in owner if owner[a] == owner[big]] == [big]
    loads = sorted(sum(10 + n for n, a in enumerate(small) if owner[a] == share) for share in set(range(3)) - {owner[big]})
    assert sum(loads) == 126 and loads[1] - loads[0] <= 18  # apart by at most the largest of them


def test_the_split_is_the_same_whatever_the_order_of_the_counts():
    counts = {uuid4(): n % 7 + 1 for n in range(200)}
    assert balanced(counts, 4) == balanced(dict(reversed(list(counts.items()))), 4)


@pytest.mark.parametrize("count", [0, MAX_SHARES + 1])
def test_share_counts_are_bounded(count):
    with pytest.raises(ValueError):
        balanced({}, count)
    with pytest.raises(ValueError):
        Share(0, count, {})


def notification(n: int, originator: UUID, topic: str) -> Notification:
    return Notification(id=n, originator_id=originator, originator_version=1, topic=topic, state=b"{}")


def test_each_event_is_applied_by_exactly_one_share_and_orders_follow_their_account():
    accounts = [account_uuid(f"acct-{n}") for n in range(6)]
    owner = balanced({a: 1 for a in accounts}, 2)
    order = uuid4()
    events = {1: SimpleNamespace(account_id="acct-3"), 2: SimpleNamespace()}  # its later events name no account
    log = [notification(10 + n, a, USAGE) for n, a in enumerate(accounts)]
    log += [notification(1, order, ORDER), notification(2, order, ORDER)]
    log += [notification(99, account_uuid("opened-later"), USAGE)]  # not in the plan: placed by its id
    shares = [Share(i, 2, owner) for i in range(2)]
    chosen = [share.events(log, {USAGE, ORDER}, lambda n: events.get(n.id, n)) for share in shares]
    for position in range(len(log)):
        assert sum(c[position] is not None for c in chosen) == 1
    mine = owner[account_uuid("acct-3")]
    assert chosen[mine][6:8] == [events[1], events[2]]
    assert shares[0].events(log[:1], set(), lambda n: n) == [None]  # topics the projection ignores: tracked only


def test_an_order_whose_account_was_never_named_stops_the_replay():
    orphan = notification(1, uuid4(), ORDER)
    with pytest.raises(InvariantViolation, match="names no account"):
        Share(0, 2, {}).events([orphan], {ORDER}, lambda n: SimpleNamespace())


def test_account_topics_are_the_account_events():
    assert all(t.startswith("ledger_core.account:Account.") for t in ACCOUNT_TOPICS)
    assert f"ledger_core.account:{Account.UsageRecorded.__qualname__}" in ACCOUNT_TOPICS
