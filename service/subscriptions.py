"""Subscription use cases that span accounts, read from the subscriptions read model page by
page: the renewal sweep (`ledger renew-subscriptions`, the scheduler's `renew-subscriptions`
chore) and a new plan price applied to running subscriptions at once."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from ledger_core.catalog import Plan
from ledger_core.commands import ApplyNewPrice, PreviewSubscriptionChange, RenewSubscription, RepricePlan
from ledger_core.errors import SubscriptionNotActive
from ledger_core.subscription import SubscriptionStatus
from projections.subscriptions import SubscriptionFilter
from service.exports import iter_subscriptions
from service.ledger_service import LedgerService


def reprice_plan(service: LedgerService, command: RepricePlan) -> tuple[Plan, dict[str, Decimal]]:
    """A new version of the plan; with ``applies_now``, every running subscription that has
    it takes it at once (prorated), else at its next renewal. Returns the plan and what each
    subscription taking it now moved (net)."""
    plan: Plan = service.handle(command)
    moved: dict[str, Decimal] = {}
    if not command.applies_now:
        return plan, moved
    for row in iter_subscriptions(service, SubscriptionFilter(status=SubscriptionStatus.ACTIVE.value)):
        if command.plan_id not in {item["plan_id"] for item in row.items}:
            continue
        try:
            booking = service.handle(ApplyNewPrice(row.account_id, row.subscription_id, command.plan_id))
        except SubscriptionNotActive:
            continue  # due for renewal first: the renewal takes the new version anyway
        moved[row.subscription_id] = booking.amount
    return plan, moved


def renew_due_subscriptions(service: LedgerService, as_of: datetime) -> dict[str, Decimal]:
    """Renews every subscription whose period ended by ``as_of`` (or ends it, if it was set
    to cancel); returns what each renewal charged. Running it twice renews nothing twice.
    Subscriptions of accounts on a test clock renew when their clock is advanced."""
    charged: dict[str, Decimal] = {}
    # a day's slack for time zones: the handler decides by the account's local day
    ends_by = (as_of + timedelta(days=1)).date().isoformat()
    due = SubscriptionFilter(status=SubscriptionStatus.ACTIVE.value, ends_by=ends_by)
    for row in iter_subscriptions(service, due):
        if service.account_row(row.account_id).test_clock_id is not None:
            continue
        booking = service.handle(RenewSubscription(row.account_id, row.subscription_id, as_of))
        if booking.amount:
            charged[row.subscription_id] = booking.amount
    return charged


def preview_change(service: LedgerService, account_id: str, change: Any) -> dict[str, Any]:
    """What a subscription change would post (signed: + System credit, - Expense charge) and
    do to the open cycle's invoice; nothing is written."""
    found = service.commands.handle(PreviewSubscriptionChange(account_id, change))
    moves = [{"type": "System" if m.credit else "Expense", "amount": m.amount if m.credit else -m.amount,
              "description": m.description} for m in found["movements"]]
    net = sum((m.amount if not m.credit else -m.amount for m in found["movements"]), Decimal(0))
    return {"movements": moves, "net": net, "invoiced_at_once": found["invoiced_at_once"],
            "next_invoice_before": _effect(found["before"]), "next_invoice_after": _effect(found["after"])}


def _effect(plan: Any) -> dict[str, Any]:
    return {"subtotal": plan.subtotal, "tax": plan.tax, "total": plan.total}
