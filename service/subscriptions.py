"""Subscription use cases that span accounts: the renewal sweep (`ledger renew-subscriptions`,
the scheduler's `renew-subscriptions` chore) and the subscriptions a test clock renews."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal

from commands.unit_of_work import created
from ledger_core.catalog import Plan
from ledger_core.commands import ApplyNewPrice, RenewSubscription, RepricePlan
from ledger_core.errors import SubscriptionNotActive
from ledger_core.subscription import Subscription, SubscriptionStatus
from service.ledger_service import LedgerService

# The sweep walks every subscription (read from the log, not a read model yet): bounded.
MAX_SUBSCRIPTIONS_PER_SWEEP = 100_000


def all_subscriptions(service: LedgerService) -> Iterable[Subscription]:
    for found in created(service.commands, Subscription.Started, MAX_SUBSCRIPTIONS_PER_SWEEP):  # type: ignore[attr-defined]
        if isinstance(found, Subscription):
            yield found


def reprice_plan(service: LedgerService, command: RepricePlan) -> tuple[Plan, dict[str, Decimal]]:
    """A new version of the plan; with ``applies_now``, every running subscription that has
    it takes it at once (prorated), else at its next renewal. Returns the plan and what each
    subscription taking it now moved (net)."""
    plan: Plan = service.handle(command)
    moved: dict[str, Decimal] = {}
    if not command.applies_now:
        return plan, moved
    for sub in all_subscriptions(service):
        if sub.status != SubscriptionStatus.ACTIVE or command.plan_id not in {i.offer.plan_id for i in sub.items}:
            continue
        try:
            booking = service.handle(ApplyNewPrice(sub.account_id, sub.subscription_id, command.plan_id))
        except SubscriptionNotActive:
            continue  # due for renewal first: the renewal takes the new version anyway
        moved[sub.subscription_id] = booking.amount
    return plan, moved


def renew_due_subscriptions(service: LedgerService, as_of: datetime) -> dict[str, Decimal]:
    """Renews every subscription whose period ended by ``as_of`` (or ends it, if it was set
    to cancel); returns what each renewal charged. Running it twice renews nothing twice.
    Subscriptions of accounts on a test clock renew when their clock is advanced."""
    charged: dict[str, Decimal] = {}
    for sub in all_subscriptions(service):
        # a day's slack for time zones: the handler decides by the account's local day
        if sub.status != SubscriptionStatus.ACTIVE or sub.period_end > (as_of + timedelta(days=1)).date():
            continue
        if service.account_row(sub.account_id).test_clock_id is not None:
            continue
        booking = service.handle(RenewSubscription(sub.account_id, sub.subscription_id, as_of))
        if booking.amount:
            charged[sub.subscription_id] = booking.amount
    return charged
