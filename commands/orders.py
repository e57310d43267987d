"""Order handlers (ledger_core/order.py): placing, paying and cancelling.

Paying posts the order's charge through the Account in the same write as the order's
``Paid``: from the balance only if usable credits cover it; by an external payment as a
recharge of the amount (its receipt goes out like any recharge's) that the charge spends.
A second payment of the same order is refused (409 ``order_not_pending``): it never
charges twice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from eventsourcing.application import Application

from commands.bookings import Booking
from commands.invoicing import NumberCounters, itemized_wording
from commands.unit_of_work import Changed, UnitOfWork, derived_id, load_owned
from ledger_core.account import Account
from ledger_core.client_key import KeyKind
from ledger_core.commands import CancelOrder, MeterRunningFee, PayOrder, PlaceOrder, ReportPower
from ledger_core.cycles import split_at_boundaries
from ledger_core.errors import InsufficientCredits, OrderExists, OrderNotFound
from ledger_core.money import Money
from ledger_core.order import (
    CHARGE_KIND,
    MAX_PARTS_PER_SESSION,
    MeteredPart,
    Order,
    OrderKind,
    PaymentMethod,
    Split,
    order_payment_method,
    order_uuid,
    parse_order_id,
)
from ledger_core.usage import UsageLine


def load_order(app: Application[UUID], order_id: str, account_id: str, *, to_change: bool = True) -> Order:
    """The order, if it is this account's (another account's is not found either)."""
    parse_order_id(order_id)
    return load_owned(app, order_uuid(order_id), Order, account_id,
                      OrderNotFound(f"no order {order_id!r}", order_id=order_id), to_change=to_change)


def place_order(command: PlaceOrder, unit: UnitOfWork) -> Booking:
    c = command
    order_id = c.order_id or derived_id("ord", c.account_id, c.idempotency_key)
    request = {"kind": c.kind, "product": c.product, "quantity": c.quantity, "unit_price": c.unit_price,
               "order_id": c.order_id, "details": c.details, "ordered_by": c.ordered_by, "resource_id": c.resource_id,
               "running_price": c.running_price, "running_unit": c.running_unit}

    def decide(account: Account) -> tuple[Booking, list[Changed]]:
        if order_uuid(parse_order_id(order_id)) in unit.app.repository:
            raise OrderExists(f"order {order_id!r} exists already", order_id=order_id)
        order = Order.place(order_id=order_id, account_id=c.account_id, kind=c.kind, product=c.product,
                            quantity=c.quantity, unit_price=c.unit_price, currency=account.currency,
                            details=c.details, ordered_by=c.ordered_by, resource_id=c.resource_id,
                            running_price=c.running_price, running_unit=c.running_unit, placed_at=unit.clock())
        claims = unit.claim(KeyKind.ORDER, c.account_id, c.idempotency_key, request, order_id, order.amount)
        return Booking(c.account_id, None, order_id, order.amount), [order, *claims]

    return unit.maybe_once(c.account_id, KeyKind.ORDER, c.idempotency_key, request, decide)


def pay_order(command: PayOrder, unit: UnitOfWork) -> Booking:
    c = command

    def decide(account: Account) -> tuple[Booking, list[Changed]]:
        order = load_order(unit.app, c.order_id, c.account_id)
        now = unit.clock()
        amount = order.pay(c.method, reference=c.reference, paid_by=c.paid_by, paid_at=now)
        money = Money(amount, account.currency)
        if c.method == PaymentMethod.EXTERNAL:
            account.recharge(money, reference=c.reference, method=order_payment_method(order.order_id))
        elif account.figures.usable_credits < amount:
            raise InsufficientCredits(f"usable credits {account.figures.usable_credits} do not cover order "
                                      f"{order.order_id} ({amount}); pay it by an external payment",
                                      usable_credits=account.figures.usable_credits, requested=amount)
        numbers = NumberCounters(unit.app)  # itemized mode invoices the charge at once
        wording = itemized_wording(unit.app, account)
        number = account.post_charge(money, kind=CHARGE_KIND[OrderKind(order.kind)],
                                     description=f"{order.product} ({order.order_id})",
                                     idempotency_key=f"{order.order_id}:paid", now=now, number_for=numbers,
                                     wording=wording)
        return Booking(c.account_id, None, number, amount), [order, *numbers.changed]

    return unit.booked(c.account_id, decide)


def report_power(command: ReportPower, unit: UnitOfWork) -> Booking:
    """A power event; a power-down posts the running fee as usage of the cloud phone."""
    c = command
    at = c.at or unit.clock()
    return _metering(unit, c.account_id, c.order_id,
                     lambda order, split: order.report_power(c.event_id, c.state, at, split))


def meter_running_fee(command: MeterRunningFee, unit: UnitOfWork) -> Booking:
    c = command
    return _metering(unit, c.account_id, c.order_id, lambda order, split: order.meter_until(c.until, split))


def _metering(unit: UnitOfWork, account_id: str, order_id: str,
              act: Callable[[Order, Split], list[MeteredPart]]) -> Booking:
    def decide(account: Account) -> tuple[Booking, list[Changed]]:
        order = load_order(unit.app, order_id, account_id)

        def split(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
            return split_at_boundaries(start, end, account.cycle_anchor_day, account.time_zone,
                                       MAX_PARTS_PER_SESSION)

        parts = act(order, split)
        total = Decimal(0)
        for n, part in enumerate(parts, start=1):
            line = UsageLine(f"{order.product} running fee", application_id=order.resource_id,
                             quantity=Decimal(part.units), unit=order.running_unit)
            account.record_usage(Money(part.amount, account.currency), line, unit_price=order.running_price,
                                 occurred_at=part.start, idempotency_key=f"{order.order_id}:run:{order.version}:{n}")
            total += part.amount
        return Booking(account_id, None, order.order_id, total), [order]

    return unit.booked(account_id, decide)


def cancel_order(command: CancelOrder, unit: UnitOfWork) -> Booking:
    def decide(account: Account) -> tuple[Booking, list[Changed]]:
        order = load_order(unit.app, command.order_id, command.account_id)
        order.cancel(unit.clock())
        return Booking(command.account_id, None, order.order_id), [order]

    return unit.booked(command.account_id, decide)
