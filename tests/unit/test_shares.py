"""Splitting a replay into shares: key ranges cut at equal parts of the events, every account
in exactly one share, and an order's events follow the account its first event names."""

from __future__ import annotations

from types import SimpleNamespace
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Notification

from ledger_core.account import Account, account_uuid
from ledger_core.errors import InvariantViolation
from projections.shares import ACCOUNT_TOPICS, MAX_KEY, MAX_SHARES, MIN_KEY, Share, plan, share_key

USAGE = next(t for t in ACCOUNT_TOPICS if t.endswith("UsageRecorded"))
ORDER = "ledger_core.order:Order.Paid"


def with_key(key: int) -> UUID:
    """A new id whose share key is ``key``."""
    return UUID(bytes=key.to_bytes(8, "big", signed=True) + uuid4().bytes[8:])


def loads(events: list[int]) -> dict[UUID, int]:
    return {uuid4(): n for n in events}


def owners(shares, accounts) -> list[int]:
    """The share each account's events go to, by the rule the database applies."""
    found = []
    for account in accounts:
        key = share_key(account)
        mine = [s.index for s in shares if account in s.own or (account not in s.listed and s.low <= key <= s.high)]
        assert len(mine) == 1, (account, mine)
        assert [s._is_mine(account) for s in shares].index(True) == mine[0]  # and the rule of the shares
        found.append(mine[0])
    return found


def totals(shares, accounts: dict[UUID, int]) -> list[int]:
    placed = owners(shares, accounts)
    return [sum(events for (_, events), share in zip(accounts.items(), placed) if share == i) for i in range(len(shares))]


def test_the_key_is_the_id_s_first_eight_bytes_signed():
    assert share_key(UUID("ffffffff-0000-0000-0000-000000000000")) == -4294967296
    assert share_key(UUID("7fffffff-ffff-ffff-0000-000000000000")) == MAX_KEY
    assert share_key(with_key(MIN_KEY)) == MIN_KEY


def test_the_key_ranges_cover_every_key_once_and_parts_are_near_equal():
    accounts = loads([10 + n % 9 for n in range(300)])
    shares = plan(accounts, 3)
    assert shares[0].low == MIN_KEY and shares[-1].high == MAX_KEY
    assert all(a.high + 1 == b.low for a, b in zip(shares, shares[1:]))
    found = totals(shares, accounts)
    assert sum(found) == sum(accounts.values()) and max(found) - min(found) <= 2 * 18
    assert len(owners(shares, [uuid4() for _ in range(50)])) == 50  # accounts opened later: one share each


def test_an_account_larger_than_a_part_is_listed_on_its_own_and_the_rest_spread_evenly():
    accounts = loads([1_000] + [10] * 100)
    shares = plan(accounts, 2)
    big = next(iter(accounts))
    assert [s.own for s in shares] == [(big,), ()] and all(s.listed == (big,) for s in shares)
    assert totals(shares, accounts) == [1_000, 1_000]  # the others make its part together


def test_a_share_ends_nearest_its_part_when_an_account_straddles_it():
    # 960 events below the cut, then one account of 240 (under a quarter part: not listed):
    # ending before it leaves the share 40 short of its 1,000; after it, 200 past.
    accounts = {with_key(key): 10 for key in range(96)} | {with_key(96): 240}
    accounts |= {with_key(97 + key): 10 for key in range(80)}
    shares = plan(accounts, 2)
    assert shares[0].own == () and shares[0].high == 95
    assert totals(shares, accounts) == [960, 1_040]


def test_equal_keys_are_never_cut_apart():
    accounts = {with_key(5): 10 for _ in range(10)} | {with_key(6): 10}
    assert len(set(owners(plan(accounts, 2), list(accounts)[:10]))) == 1


def test_the_split_is_the_same_whatever_the_order_of_the_counts():
    accounts = loads([n % 7 + 1 for n in range(200)])
    assert [(s.low, s.high, s.own) for s in plan(accounts, 4)] == \
        [(s.low, s.high, s.own) for s in plan(dict(reversed(list(accounts.items()))), 4)]


@pytest.mark.parametrize("count", [0, MAX_SHARES + 1])
def test_share_counts_are_bounded(count):
    with pytest.raises(ValueError):
        plan({}, count)
    with pytest.raises(ValueError):
        Share(0, count, MIN_KEY, MAX_KEY)


def notification(n: int, originator: UUID, topic: str) -> Notification:
    return Notification(id=n, originator_id=originator, originator_version=1, topic=topic, state=b"{}")


def test_each_event_is_applied_by_exactly_one_share_and_orders_follow_their_account():
    accounts = [account_uuid(f"acct-{n}") for n in range(6)]
    shares = plan({a: 1 for a in accounts}, 2)
    order = uuid4()
    events = {1: SimpleNamespace(account_id="acct-3"), 2: SimpleNamespace()}  # its later events name no account
    log = [notification(10 + n, a, USAGE) for n, a in enumerate(accounts)]
    log += [notification(1, order, ORDER), notification(2, order, ORDER)]
    chosen = [share.events(log, {USAGE, ORDER}, lambda n: events.get(n.id, n)) for share in shares]
    for position in range(len(log)):
        assert sum(c[position] is not None for c in chosen) == 1
    mine = owners(shares, [account_uuid("acct-3")])[0]
    assert chosen[mine][6:8] == [events[1], events[2]]
    assert shares[0].events(log[:1], set(), lambda n: n) == [None]  # topics the projection ignores: tracked only


def test_an_order_whose_account_was_never_named_stops_the_replay():
    orphan = notification(1, uuid4(), ORDER)
    with pytest.raises(InvariantViolation, match="names no account"):
        Share(0, 2, MIN_KEY, -1).events([orphan], {ORDER}, lambda n: SimpleNamespace())


def test_the_database_is_asked_for_the_share_s_accounts_and_every_order_and_subscription():
    share = plan(loads([1_000, 10, 10]), 2)[1]
    asked = share.filter({USAGE, ORDER, "ledger_core.plan:Plan.Created"})
    assert asked.keyed == (USAGE,) and asked.shared == (ORDER, "ledger_core.plan:Plan.Created")
    assert (asked.low, asked.high, asked.own, asked.listed) == (share.low, share.high, share.own, share.listed)


def test_account_topics_are_the_account_events():
    assert all(t.startswith("ledger_core.account:Account.") for t in ACCOUNT_TOPICS)
    assert f"ledger_core.account:{Account.UsageRecorded.__qualname__}" in ACCOUNT_TOPICS
