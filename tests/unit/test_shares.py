"""Splitting a replay into shares: key ranges cut at equal parts of the events, every account
in exactly one share, and an order's events follow the account its first event names."""

from __future__ import annotations

import random
from types import SimpleNamespace
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Notification

from ledger_core.account import Account, account_uuid
from ledger_core.errors import InvariantViolation
from projections.shares import ACCOUNT_TOPICS, MAX_KEY, MAX_SHARES, MIN_KEY, Share, plan

USAGE = next(t for t in ACCOUNT_TOPICS if t.endswith("UsageRecorded"))
ORDER = "ledger_core.order:Order.Paid"


def loads(events: list[int]) -> list[tuple[UUID, int, int]]:
    rng = random.Random(7)
    return [(uuid4(), rng.randint(MIN_KEY, MAX_KEY), n) for n in events]


def owners(shares, accounts) -> list[int]:
    """The share each account's events go to, by the rule the database applies."""
    found = []
    for account, key, _ in accounts:
        mine = [s.index for s in shares if account in s.own or (account not in s.listed and s.low <= key <= s.high)]
        assert len(mine) == 1, (account, mine)
        assert shares[0].owner[account] == mine[0]  # the same rule for orders and subscriptions
        found.append(mine[0])
    return found


def test_the_key_ranges_cover_every_key_once_and_parts_are_near_equal():
    accounts = loads([10 + n % 9 for n in range(300)])
    shares = plan(accounts, 3)
    assert shares[0].low == MIN_KEY and shares[-1].high == MAX_KEY
    assert all(a.high + 1 == b.low for a, b in zip(shares, shares[1:]))
    placed = owners(shares, accounts)
    totals = [sum(events for (_, _, events), share in zip(accounts, placed) if share == i) for i in range(3)]
    assert sum(totals) == sum(events for _, _, events in accounts) and max(totals) - min(totals) <= 2 * 18


def test_an_account_larger_than_a_part_is_listed_on_its_own_and_the_rest_spread_evenly():
    accounts = loads([1_000] + [10] * 100)
    shares = plan(accounts, 2)
    big = accounts[0][0]
    assert [s.own for s in shares] == [(big,), ()] and all(s.listed == (big,) for s in shares)
    placed = owners(shares, accounts)
    assert placed.count(0) == 1 and placed.count(1) == 100  # the others make less than its part together


def test_a_share_ends_nearest_its_part_when_an_account_straddles_it():
    # 960 events below the cut, then one account of 240 (under a quarter part: not listed):
    # ending before it leaves the share 40 short of its 1,000; after it, 200 past.
    accounts = [(uuid4(), key, 10) for key in range(96)] + [(uuid4(), 96, 240)]
    accounts += [(uuid4(), 97 + key, 10) for key in range(80)]
    shares = plan(accounts, 2)
    assert shares[0].own == () and shares[0].high == 95
    placed = owners(shares, accounts)
    assert sum(events for (_, _, events), share in zip(accounts, placed) if share == 0) == 960


def test_equal_keys_are_never_cut_apart():
    account = uuid4()
    accounts = [(uuid4(), 5, 10) for _ in range(10)] + [(account, 6, 10)]
    shares = plan(accounts, 2)
    assert len({owners(shares, accounts)[n] for n in range(10)}) == 1


def test_the_split_is_the_same_whatever_the_order_of_the_loads():
    accounts = loads([n % 7 + 1 for n in range(200)])
    assert [(s.low, s.high, s.own) for s in plan(accounts, 4)] == \
        [(s.low, s.high, s.own) for s in plan(list(reversed(accounts)), 4)]


@pytest.mark.parametrize("count", [0, MAX_SHARES + 1])
def test_share_counts_are_bounded(count):
    with pytest.raises(ValueError):
        plan([], count)
    with pytest.raises(ValueError):
        Share(0, count, MIN_KEY, MAX_KEY, {})


def notification(n: int, originator: UUID, topic: str) -> Notification:
    return Notification(id=n, originator_id=originator, originator_version=1, topic=topic, state=b"{}")


def test_each_event_is_applied_by_exactly_one_share_and_orders_follow_their_account():
    accounts = [account_uuid(f"acct-{n}") for n in range(6)]
    shares = plan([(a, n, 1) for n, a in enumerate(accounts)], 2)
    owner = shares[0].owner
    order = uuid4()
    events = {1: SimpleNamespace(account_id="acct-3"), 2: SimpleNamespace()}  # its later events name no account
    log = [notification(10 + n, a, USAGE) for n, a in enumerate(accounts)]
    log += [notification(1, order, ORDER), notification(2, order, ORDER)]
    chosen = [share.events(log, {USAGE, ORDER}, lambda n: events.get(n.id, n)) for share in shares]
    for position in range(len(log)):
        assert sum(c[position] is not None for c in chosen) == 1
    mine = owner[account_uuid("acct-3")]
    assert chosen[mine][6:8] == [events[1], events[2]]
    assert shares[0].events(log[:1], set(), lambda n: n) == [None]  # topics the projection ignores: tracked only


def test_an_order_whose_account_was_never_named_or_an_unplanned_account_stops_the_replay():
    orphan = notification(1, uuid4(), ORDER)
    with pytest.raises(InvariantViolation, match="names no account"):
        Share(0, 2, MIN_KEY, -1, {}).events([orphan], {ORDER}, lambda n: SimpleNamespace())
    with pytest.raises(InvariantViolation, match="not in its plan"):
        Share(0, 2, MIN_KEY, -1, {}).events([notification(2, uuid4(), USAGE)], {USAGE}, lambda n: n)


def test_the_database_is_asked_for_the_share_s_accounts_and_every_order_and_subscription():
    share = plan(loads([1_000, 10, 10]), 2)[1]
    asked = share.filter({USAGE, ORDER, "ledger_core.plan:Plan.Created"})
    assert asked.keyed == (USAGE,) and asked.shared == (ORDER, "ledger_core.plan:Plan.Created")
    assert (asked.low, asked.high, asked.own, asked.listed) == (share.low, share.high, share.own, share.listed)


def test_account_topics_are_the_account_events():
    assert all(t.startswith("ledger_core.account:Account.") for t in ACCOUNT_TOPICS)
    assert f"ledger_core.account:{Account.UsageRecorded.__qualname__}" in ACCOUNT_TOPICS
