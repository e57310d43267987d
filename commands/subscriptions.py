"""Catalog and subscription handlers (ledger_core/catalog.py, ledger_core/subscription.py).

A subscription decides the money a change moves; the handler posts it through the
Account's own commands (charges, and credits for unused days) in the same write as the
subscription's event, so a change and its money land together or not at all. Each posted
movement's key is derived from the subscription event (``<subscription>:<version>:<n>``);
a client's idempotency key makes the whole request once-only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError

from commands.bookings import Booking
from commands.invoicing import NumberCounters, itemized_wording
from commands.payer_profiles import load_profile
from commands.unit_of_work import Changed, UnitOfWork, derived_id, load, load_account, load_owned
from ledger_core.account import Account
from ledger_core.catalog import Offer, Plan, parse_plan_id, plan_uuid
from ledger_core.client_key import KeyKind
from ledger_core.commands import (
    AddAddon,
    ApplyNewPrice,
    CancelSubscription,
    ChangePackage,
    CreatePlan,
    DeleteSubscription,
    PreviewSubscriptionChange,
    ReactivateSubscription,
    RemoveAddon,
    RenewSubscription,
    RepricePlan,
    RetirePlan,
    Subscribe,
)
from ledger_core.cycles import local_date, local_midnight
from ledger_core.errors import (
    CloseInFuture,
    ConcurrentModification,
    CurrencyMismatch,
    InvalidInput,
    PlanExists,
    PlanNotFound,
    SubscriptionExists,
    SubscriptionNotFound,
)
from ledger_core.figures import ZERO, InvoiceMode
from ledger_core.invoicing import NO_WORDING
from ledger_core.money import Money
from ledger_core.subscription import Movement, Subscription, parse_subscription_id, subscription_uuid

Act = Callable[[Subscription, date], list[Movement]]
ChangeCommand = AddAddon | RemoveAddon | ChangePackage | CancelSubscription | ReactivateSubscription


# -- catalog ---------------------------------------------------------------------------
def load_plan(app: Application[UUID], plan_id: str, *, to_change: bool = True) -> Plan:
    parse_plan_id(plan_id)
    return load(app, plan_uuid(plan_id), Plan, lambda: PlanNotFound(f"no plan {plan_id!r}", plan_id=plan_id),
                to_change=to_change)


def create_plan(command: CreatePlan, unit: UnitOfWork) -> Plan:
    c = command
    plan = Plan.create(plan_id=c.plan_id, kind=c.kind, name=c.name, period=c.period, currency=c.currency,
                       price=c.price, allowances=c.allowances)
    if plan.id in unit.app.repository:
        raise PlanExists(f"plan {c.plan_id!r} exists already", plan_id=c.plan_id)
    try:
        unit.save_alone(plan)
    except IntegrityError:
        raise PlanExists(f"plan {c.plan_id!r} exists already", plan_id=c.plan_id) from None
    return plan


def reprice_plan(command: RepricePlan, unit: UnitOfWork) -> Plan:
    return _plan_change(unit, command.plan_id, lambda plan: plan.reprice(command.price, command.allowances,
                                                                         applies_now=command.applies_now))


def apply_new_price(command: ApplyNewPrice, unit: UnitOfWork) -> Booking:
    """Once per version: a repeat finds the item at that version already and moves nothing."""
    c = command
    offer = load_plan(unit.app, c.plan_id, to_change=False).offer()

    def decide(account: Account) -> tuple[Booking, list[Changed]]:
        sub = load_subscription(unit.app, c.subscription_id, c.account_id)
        return _posted(unit, account, sub, sub.take_new_price(offer, _today(unit, account)), None, {})

    return unit.booked(c.account_id, decide)


def retire_plan(command: RetirePlan, unit: UnitOfWork) -> Plan:
    return _plan_change(unit, command.plan_id, lambda plan: plan.retire())


def _plan_change(unit: UnitOfWork, plan_id: str, change: Callable[[Plan], Any]) -> Plan:
    plan = load_plan(unit.app, plan_id)
    change(plan)
    try:
        unit.save_alone(plan)
    except IntegrityError:
        raise ConcurrentModification(f"plan {plan_id!r} changed meanwhile; read it and try again") from None
    return plan


def _offer(unit: UnitOfWork, plan_id: str) -> Offer:
    """The current version of a plan still offered."""
    plan = load_plan(unit.app, plan_id, to_change=False)
    plan.require_offered()
    return plan.offer()


# -- subscriptions -----------------------------------------------------------------------
def load_subscription(app: Application[UUID], subscription_id: str, account_id: str, *,
                      to_change: bool = True) -> Subscription:
    """The subscription, if it is this account's (another account's is not found either)."""
    parse_subscription_id(subscription_id)
    return load_owned(app, subscription_uuid(subscription_id), Subscription, account_id,
                      SubscriptionNotFound(f"no subscription {subscription_id!r}", subscription_id=subscription_id),
                      to_change=to_change)


def subscribe(command: Subscribe, unit: UnitOfWork) -> Booking:
    c = command
    offer = _offer(unit, c.plan_id)
    subscription_id = c.subscription_id or derived_id("sub", c.account_id, c.idempotency_key)
    request = {"plan_id": c.plan_id, "subscription_id": c.subscription_id}
    if c.subscriber or c.payment_method_id:  # only when given: a repeat of an earlier request still matches
        request |= {"subscriber": c.subscriber, "payment_method_id": c.payment_method_id}

    def decide(account: Account) -> tuple[Booking, list[Changed]]:
        if offer.currency != account.currency:
            raise CurrencyMismatch(f"plan {c.plan_id!r} is priced in {offer.currency}, the account keeps "
                                   f"{account.currency}", expected=account.currency, got=offer.currency)
        if subscription_uuid(parse_subscription_id(subscription_id)) in unit.app.repository:
            raise SubscriptionExists(f"subscription {subscription_id!r} exists already",
                                     subscription_id=subscription_id)
        if c.payment_method_id is not None:
            _require_method(unit, c.account_id, c.payment_method_id)
        method = c.payment_method_id or _default_method(unit, c.account_id)
        sub, movements = Subscription.start(subscription_id, c.account_id, offer, _today(unit, account),
                                            subscriber=c.subscriber, payment_method_id=method)
        return _posted(unit, account, sub, movements, c.idempotency_key, request)

    return unit.maybe_once(c.account_id, KeyKind.SUBSCRIPTION, c.idempotency_key, request, decide)


def _default_method(unit: UnitOfWork, account_id: str) -> str | None:
    """The payer profile's default payment method, if it has one: what pays the subscription."""
    return load_profile(unit.app, account_id, to_change=False).default_payment_method


def _require_method(unit: UnitOfWork, account_id: str, method_id: str) -> None:
    if method_id not in load_profile(unit.app, account_id, to_change=False).payment_methods:
        raise InvalidInput(f"no payment method {method_id!r} in the payer profile", field="payment_method_id")


def add_addon(command: AddAddon, unit: UnitOfWork) -> Booking:
    return _changed(unit, command, _act(command, unit))


def remove_addon(command: RemoveAddon, unit: UnitOfWork) -> Booking:
    return _changed(unit, command, _act(command, unit))


def change_package(command: ChangePackage, unit: UnitOfWork) -> Booking:
    return _changed(unit, command, _act(command, unit))


def cancel_subscription(command: CancelSubscription, unit: UnitOfWork) -> Booking:
    return _changed(unit, command, _act(command, unit))


def reactivate_subscription(command: ReactivateSubscription, unit: UnitOfWork) -> Booking:
    return _changed(unit, command, _act(command, unit))


def _act(command: ChangeCommand, unit: UnitOfWork) -> Act:
    """The decision a change asks of the subscription (plans read before the write)."""
    c = command
    if isinstance(c, AddAddon):
        offer = _offer(unit, c.plan_id)
        return lambda sub, today: sub.add_addon(offer, c.quantity, today)
    if isinstance(c, RemoveAddon):
        return lambda sub, today: sub.remove_addon(c.plan_id, today)
    if isinstance(c, ChangePackage):
        package = _offer(unit, c.plan_id)
        return lambda sub, today: sub.change_package(package, today, at_renewal=c.at_renewal)
    if isinstance(c, CancelSubscription):
        return lambda sub, today: sub.cancel(today, at_period_end=c.at_period_end)
    return lambda sub, today: sub.reactivate(today)


def _changed(unit: UnitOfWork, command: ChangeCommand, act: Act) -> Booking:
    c = command
    request = {name: value for name, value in vars(c).items() if name not in ("idempotency_key", "_")}

    def decide(account: Account) -> tuple[Booking, list[Changed]]:
        sub = load_subscription(unit.app, c.subscription_id, c.account_id)
        return _posted(unit, account, sub, act(sub, _today(unit, account)), c.idempotency_key, request)

    return unit.maybe_once(c.account_id, KeyKind.SUBSCRIPTION, c.idempotency_key, request, decide)


def delete_subscription(command: DeleteSubscription, unit: UnitOfWork) -> Booking:
    def decide(account: Account) -> tuple[Booking, list[Changed]]:
        sub = load_subscription(unit.app, command.subscription_id, command.account_id)
        sub.delete()
        return Booking(command.account_id, None, sub.subscription_id, ZERO), [sub]

    return unit.booked(command.account_id, decide)


def renew_subscription(command: RenewSubscription, unit: UnitOfWork) -> Booking:
    """Idempotent by nature: a period renews once, the next run finds nothing due."""
    c = command
    current = load_subscription(unit.app, c.subscription_id, c.account_id, to_change=False)
    plan_ids = {item.offer.plan_id for item in current.items}
    if current.scheduled_package is not None:
        plan_ids.add(current.scheduled_package.plan_id)
    offers = {plan_id: load_plan(unit.app, plan_id, to_change=False).offer() for plan_id in plan_ids}

    now = unit.clock()
    moment = c.as_of or now
    if moment > now:
        raise CloseInFuture(f"subscriptions renew up to now at the latest, not {moment.isoformat()}",
                            as_of=moment, now=now)

    def decide(account: Account) -> tuple[Booking, list[Changed]]:
        sub = load_subscription(unit.app, c.subscription_id, c.account_id)
        return _posted(unit, account, sub, sub.renew(local_date(moment, account.time_zone), offers), None, {})

    return unit.booked(c.account_id, decide)


def preview_subscription_change(command: PreviewSubscriptionChange, unit: UnitOfWork) -> dict[str, Any]:
    """The change decided on copies of the account and subscription, never saved: what it
    would post, and the open cycle's invoice before and after it."""
    change = command.change
    act = _act(change, unit)
    account = load_account(unit.app, command.account_id)
    sub = load_subscription(unit.app, change.subscription_id, command.account_id)
    now = unit.clock()
    before = account.cycle_invoice_plan(now)
    movements = act(sub, _today(unit, account))
    _posted(unit, account, sub, movements, None, {})
    after = account.cycle_invoice_plan(now)
    return {"movements": movements, "before": before, "after": after,
            "invoiced_at_once": account.invoice_mode == InvoiceMode.ITEMIZED}


# -- money -------------------------------------------------------------------------------
def _today(unit: UnitOfWork, account: Account) -> date:
    return local_date(unit.clock(), account.time_zone)


def _posted(unit: UnitOfWork, account: Account, sub: Subscription, movements: list[Movement], key: str | None,
            request: dict[str, Any]) -> tuple[Booking, list[Changed]]:
    """Posts the movements on the account, each under a key derived from the subscription
    event that made it; returns the booking (the net charged) and what else to save."""
    numbers = NumberCounters(unit.app)  # itemized mode invoices each charge and credit at once
    wording = itemized_wording(unit.app, account) if movements else NO_WORDING
    now, net = unit.clock(), Decimal(0)
    for n, movement in enumerate(movements, start=1):
        post = account.post_credit if movement.credit else account.post_charge
        post(Money(movement.amount, account.currency), kind=movement.kind, description=movement.description,
             idempotency_key=f"{sub.subscription_id}:{sub.version}:{n}", now=now, number_for=numbers,
             wording=wording)
        net += -movement.amount if movement.credit else movement.amount
    # What usage may take free this period follows the subscription's items at once.
    account.grant_allowances(sub.subscription_id, sub.allowances, local_midnight(sub.period_end, account.time_zone))
    claims = unit.claim(KeyKind.SUBSCRIPTION, account.account_id, key, request, sub.subscription_id, net)
    return Booking(account.account_id, None, sub.subscription_id, net), [sub, *numbers.changed, *claims]
