"""Advancing a test clock: the chores that fall due on the way run for its accounts, in order.

The chores of an attached account are those the scheduler runs for real accounts:
closing the cycles that ended, expiring the holds whose time passed, renewing the
subscriptions whose period ended. The clock stops
at each moment one of them falls due (a cycle boundary, a hold's expiry), the chores due
then run at that time, and it moves on; the answer comes once it reached the new time.
So an invoice is issued on the day its cycle ended, and a hold that expired before a
close is released before that close, as with real time.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from ledger_core.commands import AdvanceTestClock, CreateTestClock, ExpireHolds, RenewSubscription
from ledger_core.cycles import local_midnight, next_boundary
from ledger_core.errors import TestClockRule
from ledger_core.proration import next_period_start
from ledger_core.subscription import SubscriptionStatus
from ledger_core.test_clocks import TestClock
from projections.subscriptions import SubscriptionFilter
from service.exports import iter_subscriptions
from service.invoicing import close_account_cycles
from service.ledger_service import LedgerService

MAX_STOPS_PER_ADVANCE = 2_000  # moments at which chores fall due, over all the clock's accounts
CLOSE, EXPIRE, RENEW = "close_cycles", "expire_holds", "renew:"


@dataclass
class Advanced:
    clock: TestClock
    invoices: dict[str, list[str]] = field(default_factory=dict)  # account -> invoice ids made
    expired: dict[str, list[str]] = field(default_factory=dict)  # account -> reservation ids released
    renewed: dict[str, Decimal] = field(default_factory=dict)  # subscription -> what its renewals charged


def create_test_clock(service: LedgerService, frozen_time: datetime, clock_id: str | None = None) -> TestClock:
    clock: TestClock = service.handle(CreateTestClock(frozen_time, clock_id))
    return clock


def advance_test_clock(service: LedgerService, clock_id: str, to: datetime) -> Advanced:
    clock = service.commands.test_clock(clock_id)
    clock.check_advance(to)
    stops = _stops(service, clock, to)
    done = Advanced(clock)
    for moment in sorted(stops):
        done.clock = service.handle(AdvanceTestClock(clock_id, moment))
        for account_id, chore in sorted(stops[moment]):
            if chore == CLOSE and (made := close_account_cycles(service, account_id)):
                done.invoices.setdefault(account_id, []).extend(made)
            if chore == EXPIRE and (released := service.handle(ExpireHolds(account_id))):
                done.expired.setdefault(account_id, []).extend(released)
            if chore.startswith(RENEW):
                subscription_id = chore[len(RENEW):]
                charged = service.handle(RenewSubscription(account_id, subscription_id)).amount
                done.renewed[subscription_id] = done.renewed.get(subscription_id, Decimal(0)) + charged
    return done


def _stops(service: LedgerService, clock: TestClock, to: datetime) -> dict[datetime, set[tuple[str, str]]]:
    """moment -> the (account, chore) that fall due then; the new time is always a stop."""
    stops: dict[datetime, set[tuple[str, str]]] = defaultdict(set)
    stops[to] = set()
    soonest = clock.frozen_time + timedelta(microseconds=1)  # what fell due already runs first
    for account_id in clock.account_ids:
        account = service.commands.account(account_id)
        boundary = next_boundary(account.closed_through, account.cycle_anchor_day, account.time_zone)
        while account.cycle_running and boundary <= to:
            stops[max(boundary, soonest)].add((account_id, CLOSE))
            _require_few(stops)
            boundary = next_boundary(boundary, account.cycle_anchor_day, account.time_zone)
        for hold in account.holds.values():
            if hold.expires_at is not None and hold.expires_at <= to:
                stops[max(hold.expires_at, soonest)].add((account_id, EXPIRE))
                _require_few(stops)
        running = SubscriptionFilter(account_id=account_id, status=SubscriptionStatus.ACTIVE.value)
        for row in iter_subscriptions(service, running):
            sub = service.commands.subscription(account_id, row.subscription_id)  # its anchor day
            end = sub.period_end
            while (moment := local_midnight(end, account.time_zone)) <= to:
                stops[max(moment, soonest)].add((account_id, RENEW + sub.subscription_id))
                _require_few(stops)
                if sub.cancel_at_period_end:
                    break
                end = next_period_start(end, sub.period, sub.anchor_day)
    return stops


def _require_few(stops: dict[datetime, set[tuple[str, str]]]) -> None:
    if len(stops) > MAX_STOPS_PER_ADVANCE:
        raise TestClockRule(f"more than {MAX_STOPS_PER_ADVANCE} moments fall due in this advance; advance in "
                            "smaller steps", field="frozen_time")
