"""An order: a package, agent (proxy) or cloud-phone purchase, as an aggregate.

An order is placed pending payment and moves no money. Paying it completes it, and the
handler posts its charge through the Account in the same write: from the balance (the
account's usable credits must cover it), or by an external payment, which arrives as a
recharge (with its receipt) that the charge then spends. A pending order can be cancelled;
a completed or cancelled one is final.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from ledger_core.account import LEDGER_NAMESPACE
from ledger_core.account_settings import parse_choice
from ledger_core.errors import InvalidInput, InvariantViolation, OrderNotPending
from ledger_core.figures import ZERO
from ledger_core.money import parse_quantity, parse_unit_price, price
from ledger_core.text import refuse_card_numbers, unsafe_character

ORDER_ID_PATTERN = re.compile(r"^ord_[A-Za-z0-9]{1,40}$")
MAX_TEXT = 200
MAX_DETAILS = 2_000


ORDER_EVENT_TYPES = ("Placed", "Paid", "Cancelled", "PowerReported", "Metered")
UNIT_SECONDS = {"minute": 60, "hour": 3_600}  # running fees: per started minute or hour
MAX_POWER_EVENTS = 100_000  # power events one order remembers (a repeat of one is ignored)
MAX_PARTS_PER_SESSION = 36  # a session is metered per billing cycle it spans


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


@dataclass(frozen=True)
class MeteredPart:
    """A cloud phone's running time in one billing cycle, and what it costs."""

    start: datetime
    end: datetime
    units: int  # started minutes or hours
    amount: Decimal


Split = Callable[[datetime, datetime], list[tuple[datetime, datetime]]]  # a stretch cut at cycle boundaries


def order_payment_method(order_id: str) -> str:
    """The method of the recharge an external payment of an order books: the order's own
    receipt covers that money, so the recharge gets none."""
    return f"order {order_id}"


def is_order_payment(method: str) -> bool:
    return method.startswith("order ord_")


def purchaser_email(*candidates: str) -> str | None:
    """Who bought, when they are named by an e-mail address (paid_by, ordered_by)."""
    return next((c for c in candidates if re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", c)), None)


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
              resource_id: str | None = None, running_price: object = None, running_unit: str | None = None,
              placed_at: datetime) -> Order:
        if not product:
            raise InvalidInput("an order names its product", field="product")
        q, p = parse_quantity(quantity), parse_unit_price(unit_price, field="unit_price")
        running = None if running_price is None else parse_unit_price(running_price, field="running_price")
        if (running is None) != (running_unit is None) or (running_unit is not None and running_unit not in UNIT_SECONDS):
            raise InvalidInput("a running fee is a running_price per running_unit (minute or hour)",
                               field="running_unit")
        if running is not None and (kind != OrderKind.CLOUD_PHONE or not resource_id):
            raise InvalidInput("running fees meter a cloud phone: kind cloud_phone with its resource_id",
                               field="running_price")
        return cls(order_id=parse_order_id(order_id), account_id=account_id,
                   kind=parse_choice(OrderKind, kind, "kind").value, product=_text(product, "product"),
                   quantity=q, unit_price=p, amount=price(q, p), currency=currency,
                   details=_text(details, "details", MAX_DETAILS, one_line=False),
                   ordered_by=_text(ordered_by, "ordered_by"),
                   resource_id=None if resource_id is None else _text(resource_id, "resource_id"),
                   running_price=running, running_unit=running_unit, placed_at=placed_at)

    @event("Placed")
    def __init__(self, order_id: str, account_id: str, kind: str, product: str, quantity: Decimal,
                 unit_price: Decimal, amount: Decimal, currency: str, details: str, ordered_by: str,
                 resource_id: str | None, running_price: Decimal | None, running_unit: str | None,
                 placed_at: datetime) -> None:
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
        self.running_price = running_price  # per running_unit while powered up
        self.running_unit = running_unit
        self.placed_at = placed_at
        self.powered_on_since: datetime | None = None
        self.power_events: set[str] = set()
        self.last_power_at: datetime | None = None
        self.running_fees = ZERO
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
                   paid_at=paid_at, account_id=self.account_id)
        return self.amount

    @event("Paid")
    def _paid(self, method: str, reference: str, paid_by: str, paid_at: datetime, account_id: str) -> None:
        # account_id repeats the order's: the read model queues the receipt with the account's row
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

    # -- running fees ------------------------------------------------------------------
    def report_power(self, event_id: str, state: str, at: datetime, split: Split) -> list[MeteredPart]:
        """A power-up or power-down of the cloud phone. A repeat of an event id changes
        nothing; an up while up or a down while down is noted and changes nothing either.
        A power-down meters the stretch since the power-up, per billing cycle it spans."""
        self._require_metered()
        if event_id in self.power_events:
            return []
        if not event_id or len(event_id) > 128:
            raise InvalidInput("a power event has an id of 1-128 characters", field="event_id")
        if state not in ("on", "off"):
            raise InvalidInput("state is on or off", field="state")
        if len(self.power_events) >= MAX_POWER_EVENTS:
            raise InvalidInput(f"an order takes at most {MAX_POWER_EVENTS} power events", field="event_id")
        since = self.powered_on_since
        latest = max((t for t in (since, self.last_power_at) if t is not None), default=None)
        if latest is not None and at < latest:
            raise InvalidInput(f"power events arrive in time order: this one is before {latest.isoformat()}",
                               field="at")
        parts = self._metered(since, at, split) if state == "off" and since is not None else []
        self._power_reported(event_id=event_id, state=state, at=at)
        return parts

    @event("PowerReported")
    def _power_reported(self, event_id: str, state: str, at: datetime) -> None:
        self.power_events.add(event_id)
        self.last_power_at = at
        if state == "on" and self.powered_on_since is None:
            self.powered_on_since = at
        elif state == "off":
            self.powered_on_since = None

    def meter_until(self, until: datetime, split: Split) -> list[MeteredPart]:
        """A power-down that did not arrive: the running stretch is metered up to ``until``
        (a cycle's end) and goes on from there."""
        since = self.powered_on_since
        if self.running_price is None or since is None or until <= since:
            return []
        return self._metered(since, until, split, goes_on=True)

    def _metered(self, since: datetime, end: datetime, split: Split, *, goes_on: bool = False) -> list[MeteredPart]:
        if self.running_price is None or self.running_unit is None:
            raise InvariantViolation(f"order {self.order_id} has no running fee")
        stretches = split(since, end)
        if len(stretches) > MAX_PARTS_PER_SESSION:
            raise InvalidInput(f"a running stretch spans at most {MAX_PARTS_PER_SESSION} billing cycles", field="at")
        parts = []
        for start, stop in stretches:
            units = math.ceil((stop - start).total_seconds() / UNIT_SECONDS[self.running_unit])
            part = MeteredPart(start, stop, units, price(Decimal(units), self.running_price))
            self._metered_part(start=start, end=stop, units=units, amount=part.amount, goes_on=goes_on)
            parts.append(part)
        return parts

    @event("Metered")
    def _metered_part(self, start: datetime, end: datetime, units: int, amount: Decimal, goes_on: bool) -> None:
        self.running_fees += amount
        if goes_on:
            self.powered_on_since = end

    def _require_metered(self) -> None:
        if self.running_price is None:
            raise InvalidInput(f"order {self.order_id!r} has no running fee to meter", field="order_id")
        if self.status != OrderStatus.COMPLETED:
            raise OrderNotPending(f"order {self.order_id!r} is {self.status}: only a completed order runs",
                                  order_id=self.order_id, status=self.status)

    def _require_pending(self, what: str) -> None:
        if self.status != OrderStatus.PENDING:
            raise OrderNotPending(f"order {self.order_id!r} is {self.status}: only a pending order can be {what}",
                                  order_id=self.order_id, status=self.status)
