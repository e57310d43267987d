"""An order: a package, agent (proxy) or cloud-phone purchase, as an aggregate.

An order is placed pending payment and moves no money. Paying it completes it, and the
handler posts its charge through the Account in the same write: from the balance (the
account's usable credits must cover it), or by an external payment, which arrives as a
recharge (with its receipt) that the charge then spends. A pending order can be cancelled;
a completed or cancelled one is final.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from ledger_core.account import LEDGER_NAMESPACE
from ledger_core.account_settings import parse_choice
from ledger_core.errors import InvalidInput, OrderNotPending
from ledger_core.money import parse_quantity, parse_unit_price, price
from ledger_core.text import refuse_card_numbers, unsafe_character

ORDER_ID_PATTERN = re.compile(r"^ord_[A-Za-z0-9]{1,40}$")
MAX_TEXT = 200
MAX_DETAILS = 2_000


ORDER_EVENT_TYPES = ("Placed", "Paid", "Cancelled")


class OrderKind(StrEnum):
    PACKAGE = "package"
    AGENT = "agent"  # a proxy
    CLOUD_PHONE = "cloud_phone"


class OrderStatus(StrEnum):
    PENDING = "pending_payment"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class PaymentMethod(StrEnum):
    BALANCE = "balance"  # from the account's usable credits
    EXTERNAL = "external"  # paid outside (a card, a transfer): its reference is kept


# The Account's charge kind an order's charge is booked as.
CHARGE_KIND = {OrderKind.PACKAGE: "subscription", OrderKind.AGENT: "service", OrderKind.CLOUD_PHONE: "hardware"}


def order_uuid(order_id: str) -> UUID:
    return uuid5(LEDGER_NAMESPACE, f"order/{order_id}")


def parse_order_id(order_id: object) -> str:
    if not isinstance(order_id, str) or not ORDER_ID_PATTERN.fullmatch(order_id):
        raise InvalidInput("an order id is ord_ and 1-40 letters or digits", field="order_id")
    return order_id


def _text(value: object, field: str, limit: int = MAX_TEXT, *, one_line: bool = True) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidInput(f"{field} is text of at most {limit} characters", field=field)
    problem = unsafe_character(value, one_line=one_line)
    if problem is not None:
        raise InvalidInput(f"{field} holds {problem}", field=field)
    refuse_card_numbers(value, field)
    return value


class Order(Aggregate):
    @staticmethod
    def create_id(order_id: str) -> UUID:
        return order_uuid(order_id)

    @classmethod
    def place(cls, *, order_id: str, account_id: str, kind: str, product: str, quantity: object,
              unit_price: object, currency: str, details: str = "", ordered_by: str = "",
              resource_id: str | None = None, placed_at: datetime) -> Order:
        if not product:
            raise InvalidInput("an order names its product", field="product")
        q, p = parse_quantity(quantity), parse_unit_price(unit_price, field="unit_price")
        return cls(order_id=parse_order_id(order_id), account_id=account_id,
                   kind=parse_choice(OrderKind, kind, "kind").value, product=_text(product, "product"),
                   quantity=q, unit_price=p, amount=price(q, p), currency=currency,
                   details=_text(details, "details", MAX_DETAILS, one_line=False),
                   ordered_by=_text(ordered_by, "ordered_by"),
                   resource_id=None if resource_id is None else _text(resource_id, "resource_id"),
                   placed_at=placed_at)

    @event("Placed")
    def __init__(self, order_id: str, account_id: str, kind: str, product: str, quantity: Decimal,
                 unit_price: Decimal, amount: Decimal, currency: str, details: str, ordered_by: str,
                 resource_id: str | None, placed_at: datetime) -> None:
        self.order_id = order_id
        self.account_id = account_id
        self.kind = kind
        self.product = product
        self.quantity = quantity
        self.unit_price = unit_price
        self.amount = amount
        self.currency = currency
        self.details = details
        self.ordered_by = ordered_by
        self.resource_id = resource_id  # a cloud phone's id: what its running fees are metered under
        self.placed_at = placed_at
        self.status = OrderStatus.PENDING.value
        self.payment_method: str | None = None
        self.payment_reference = ""
        self.paid_by = ""
        self.paid_at: datetime | None = None
        self.cancelled_at: datetime | None = None

    def pay(self, method: str, *, reference: str, paid_by: str, paid_at: datetime) -> Decimal:
        """Completes the order; returns what it costs (the handler posts it)."""
        self._require_pending("paid")
        chosen = parse_choice(PaymentMethod, method, "method")
        if chosen is PaymentMethod.EXTERNAL and not reference:
            raise InvalidInput("an external payment names its reference", field="reference")
        self._paid(method=chosen.value, reference=_text(reference, "reference"), paid_by=_text(paid_by, "paid_by"),
                   paid_at=paid_at)
        return self.amount

    @event("Paid")
    def _paid(self, method: str, reference: str, paid_by: str, paid_at: datetime) -> None:
        self.status = OrderStatus.COMPLETED.value
        self.payment_method, self.payment_reference, self.paid_by, self.paid_at = method, reference, paid_by, paid_at

    def cancel(self, cancelled_at: datetime) -> None:
        """A pending order is dropped; no money moved, none moves."""
        self._require_pending("cancelled")
        self._cancelled(cancelled_at=cancelled_at)

    @event("Cancelled")
    def _cancelled(self, cancelled_at: datetime) -> None:
        self.status = OrderStatus.CANCELLED.value
        self.cancelled_at = cancelled_at

    def _require_pending(self, what: str) -> None:
        if self.status != OrderStatus.PENDING:
            raise OrderNotPending(f"order {self.order_id!r} is {self.status}: only a pending order can be {what}",
                                  order_id=self.order_id, status=self.status)
