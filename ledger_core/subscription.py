"""A subscription: one account's package and add-ons over periods, as an aggregate.

Its public methods decide and answer the money the decision moves as ``Movement`` values
(charges and credits); the handler posts them through the Account's own commands in the
same write, so the five figures, invoices and bills follow the money model unchanged.
Proration is ledger_core/proration.py: each item is charged, when it starts, what the rest
of the period costs, and credited, when it stops early, down to what its active days cost.

Days are the account's local days. Statuses: active (``cancel_at_period_end`` may be set)
and cancelled; a cancelled subscription may be reactivated, or deleted (hidden from
lists, kept in history).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from ledger_core.account import LEDGER_NAMESPACE
from ledger_core.catalog import Offer, PlanKind
from ledger_core.errors import InvalidInput, InvariantViolation, SubscriptionNotActive
from ledger_core.figures import ZERO
from ledger_core.proration import MAX_PERIODS_PER_RENEWAL, next_period_start, prorated
from ledger_core.text import unsafe_character

SUBSCRIPTION_ID_PATTERN = re.compile(r"^sub_[A-Za-z0-9]{1,40}$")
MAX_ADDONS = 50
MAX_QUANTITY = 10_000


SUBSCRIPTION_EVENT_TYPES = (
    "Started", "AddonAdded", "AddonRemoved", "PackageChangeScheduled", "PackageChanged", "CancellationScheduled",
    "Cancelled", "Reactivated", "Renewed", "Deleted", "ItemRepriced",
)


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Item:
    """A package or add-on on the subscription, in the current period."""

    offer: Offer
    quantity: int
    since: date | None  # first day of its running stretch; None: stopped (cancelled)
    active_before: int  # days it was active in this period before ``since``
    charged: Decimal  # what this period has cost it so far, net of credits

    @property
    def amount(self) -> Decimal:
        return self.offer.price * self.quantity

    def plain(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, plain: dict[str, Any]) -> Item:
        return cls(**{**plain, "offer": Offer(**plain["offer"])})


@dataclass(frozen=True)
class Movement:
    """Money a decision moves: a charge (the customer owes) or a credit (unused days back)."""

    credit: bool
    amount: Decimal  # positive
    kind: str  # the Account's charge kind: subscription (a package) or addon
    description: str


def subscription_uuid(subscription_id: str) -> UUID:
    return uuid5(LEDGER_NAMESPACE, f"subscription/{subscription_id}")


def parse_subscription_id(subscription_id: object) -> str:
    if not isinstance(subscription_id, str) or not SUBSCRIPTION_ID_PATTERN.fullmatch(subscription_id):
        raise InvalidInput("a subscription id is sub_ and 1-40 letters or digits", field="subscription_id")
    return subscription_id


def _moving(movements: list[Movement | None]) -> list[Movement]:
    """The movements that move money: a free plan or a stretch too short to cost a unit posts nothing."""
    return [m for m in movements if m is not None and m.amount > 0]


def _kind(offer: Offer) -> str:
    return "subscription" if offer.kind == PlanKind.PACKAGE else "addon"


class Subscription(Aggregate):
    @staticmethod
    def create_id(subscription_id: str) -> UUID:
        return subscription_uuid(subscription_id)

    # -- starting ----------------------------------------------------------------------
    @classmethod
    def start(cls, subscription_id: str, account_id: str, package: Offer, today: date, *, subscriber: str = "",
              payment_method_id: str | None = None) -> tuple[Subscription, list[Movement]]:
        if package.kind != PlanKind.PACKAGE:
            raise InvalidInput(f"{package.plan_id!r} is an add-on: subscribe to a package", field="plan_id")
        if not isinstance(subscriber, str) or len(subscriber) > 200 or unsafe_character(subscriber):
            raise InvalidInput("subscriber is one line of at most 200 characters", field="subscriber")
        end = next_period_start(today, package.period, today.day)
        item = Item(package, 1, today, 0, package.price)
        sub = cls(subscription_id=parse_subscription_id(subscription_id), account_id=account_id,
                  period=package.period, anchor_day=today.day, period_start=today, period_end=end,
                  package=item.plain(), subscriber=subscriber, payment_method_id=payment_method_id)
        return sub, _moving([Movement(False, item.amount, "subscription", sub._text(item, "for", today, end))])

    @event("Started")
    def __init__(self, subscription_id: str, account_id: str, period: str, anchor_day: int, period_start: date,
                 period_end: date, package: dict[str, Any], subscriber: str = "",
                 payment_method_id: str | None = None) -> None:
        self.subscription_id = subscription_id
        self.account_id = account_id
        self.subscriber = subscriber
        self.payment_method_id = payment_method_id
        self.period = period
        self.anchor_day = anchor_day
        self.period_start = period_start
        self.period_end = period_end
        self.package = Item.of(package)
        self.addons: dict[str, Item] = {}
        self.status = SubscriptionStatus.ACTIVE.value
        self.cancel_at_period_end = False
        self.scheduled_package: Offer | None = None
        self.cancelled_on: date | None = None
        self.deleted = False

    # -- views -------------------------------------------------------------------------
    @property
    def items(self) -> list[Item]:
        return [self.package, *self.addons.values()]

    @property
    def period_days(self) -> int:
        return (self.period_end - self.period_start).days

    @property
    def currency(self) -> str:
        return self.package.offer.currency

    @property
    def allowances(self) -> dict[str, Decimal]:
        """What the running items include this period, summed per allowance (none once cancelled)."""
        total: dict[str, Decimal] = {}
        if self.status != SubscriptionStatus.ACTIVE:
            return total
        for item in self.items:
            if item.since is not None:
                for name, amount in item.offer.allowances.items():
                    total[name] = total.get(name, ZERO) + amount * item.quantity
        return total

    # -- changes -------------------------------------------------------------------------
    def add_addon(self, addon: Offer, quantity: int, today: date) -> list[Movement]:
        self._require_active(today)
        if addon.kind != PlanKind.ADDON:
            raise InvalidInput(f"{addon.plan_id!r} is a package, not an add-on", field="plan_id")
        if addon.plan_id in self.addons:
            raise InvalidInput(f"add-on {addon.plan_id!r} is on the subscription already", field="plan_id")
        if len(self.addons) >= MAX_ADDONS:
            raise InvalidInput(f"a subscription has at most {MAX_ADDONS} add-ons", field="plan_id")
        self._require_same_terms(addon)
        if not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
            raise InvalidInput(f"quantity is 1-{MAX_QUANTITY}", field="quantity")
        item = self._started(addon, quantity, today)
        self._addon_added(item=item.plain())
        return _moving([Movement(False, item.charged, "addon", self._text(item, "for", today, self.period_end))])

    @event("AddonAdded")
    def _addon_added(self, item: dict[str, Any]) -> None:
        added = Item.of(item)
        self.addons[added.offer.plan_id] = added

    def remove_addon(self, plan_id: str, today: date) -> list[Movement]:
        self._require_active(today)
        item = self.addons.get(plan_id)
        if item is None:
            raise InvalidInput(f"no add-on {plan_id!r} on this subscription", field="plan_id")
        stopped, movement = self._stopped(item, today)
        self._addon_removed(plan_id=plan_id, on=today)
        return [movement] if movement else []

    @event("AddonRemoved")
    def _addon_removed(self, plan_id: str, on: date) -> None:
        del self.addons[plan_id]

    def change_package(self, package: Offer, today: date, *, at_renewal: bool) -> list[Movement]:
        """Upgrade or downgrade: now (the old package's unused days are credited and the new
        one charged for the rest of the period), or from the next period on."""
        self._require_active(today)
        if package.kind != PlanKind.PACKAGE:
            raise InvalidInput(f"{package.plan_id!r} is an add-on, not a package", field="plan_id")
        self._require_same_terms(package)
        if at_renewal:
            self._package_change_scheduled(offer=asdict(package))
            return []
        old, credit = self._stopped(self.package, today)
        new = self._started(package, 1, today)
        self._package_changed(item=new.plain(), on=today)
        charge = Movement(False, new.charged, "subscription", self._text(new, "for", today, self.period_end))
        return _moving([credit, charge])

    def take_new_price(self, offer: Offer, today: date) -> list[Movement]:
        """The plan's new version at once, not at the renewal (the admin's choice): the item
        of that plan is credited its unused days at the old price and charged the rest of the
        period at the new one."""
        self._require_active(today)
        current = self.package if self.package.offer.plan_id == offer.plan_id else self.addons.get(offer.plan_id)
        if current is None or current.offer.version >= offer.version:
            return []
        _, credit = self._stopped(current, today)
        new = self._started(offer, current.quantity, today)
        self._item_repriced(item=new.plain(), on=today)
        charge = Movement(False, new.charged, _kind(offer), self._text(new, "new price for", today, self.period_end))
        return _moving([credit, charge])

    @event("ItemRepriced")
    def _item_repriced(self, item: dict[str, Any], on: date) -> None:
        repriced = Item.of(item)
        if repriced.offer.plan_id == self.package.offer.plan_id:
            self.package = repriced
        else:
            self.addons[repriced.offer.plan_id] = repriced

    @event("PackageChangeScheduled")
    def _package_change_scheduled(self, offer: dict[str, Any] | None) -> None:
        self.scheduled_package = None if offer is None else Offer(**offer)

    @event("PackageChanged")
    def _package_changed(self, item: dict[str, Any], on: date) -> None:
        self.package = Item.of(item)
        self.scheduled_package = None

    def cancel(self, today: date, *, at_period_end: bool) -> list[Movement]:
        """At the period's end (no money moves; reactivating withdraws it), or now (the
        unused days of every item are credited)."""
        self._require_active(today)
        if at_period_end:
            if not self.cancel_at_period_end:
                self._cancellation_scheduled(at_period_end=True)
            return []
        stopped = [self._stopped(item, today) for item in self.items]
        self._cancelled(on=today, items=[item.plain() for item, _ in stopped])
        return [movement for _, movement in stopped if movement]

    @event("CancellationScheduled")
    def _cancellation_scheduled(self, at_period_end: bool) -> None:
        self.cancel_at_period_end = at_period_end

    @event("Cancelled")
    def _cancelled(self, on: date, items: list[dict[str, Any]]) -> None:
        self._set_items([Item.of(x) for x in items])
        self.status = SubscriptionStatus.CANCELLED.value
        self.cancelled_on = on
        self.cancel_at_period_end = False

    def reactivate(self, today: date) -> list[Movement]:
        """A scheduled cancellation is withdrawn; a cancelled subscription runs again from
        today, charged for the rest of its period (a new period if that one has ended)."""
        if self.deleted:
            raise SubscriptionNotActive("a deleted subscription cannot be reactivated")
        if self.status == SubscriptionStatus.ACTIVE:
            if not self.cancel_at_period_end:
                raise SubscriptionNotActive("the subscription is active and not set to cancel")
            self._cancellation_scheduled(at_period_end=False)
            return []
        if today < (self.cancelled_on or today):
            raise InvariantViolation("a reactivation is dated before the cancellation")
        if today >= self.period_end:  # a new period from today, at full price
            end = next_period_start(today, self.period, today.day)
            items = [replace(item, since=today, active_before=0, charged=item.amount) for item in self.items]
            self._reactivated(on=today, period_start=today, period_end=end, anchor_day=today.day,
                              items=[item.plain() for item in items])
            return _moving([Movement(False, item.amount, _kind(item.offer), self._text(item, "for", today, end))
                            for item in items])
        movements, items = [], []
        for item in self.items:
            running = self._restarted(item, today)
            items.append(running)
            if running.charged > item.charged:
                movements.append(Movement(False, running.charged - item.charged, _kind(item.offer),
                                          self._text(item, "again for", today, self.period_end)))
        self._reactivated(on=today, period_start=self.period_start, period_end=self.period_end,
                          anchor_day=self.anchor_day, items=[item.plain() for item in items])
        return _moving(movements)

    @event("Reactivated")
    def _reactivated(self, on: date, period_start: date, period_end: date, anchor_day: int,
                     items: list[dict[str, Any]]) -> None:
        self.period_start, self.period_end, self.anchor_day = period_start, period_end, anchor_day
        self._set_items([Item.of(x) for x in items])
        self.status = SubscriptionStatus.ACTIVE.value
        self.cancelled_on = None

    def delete(self) -> None:
        """Hidden from lists; its history stays."""
        if self.status != SubscriptionStatus.CANCELLED or self.deleted:
            raise SubscriptionNotActive("only a cancelled subscription can be deleted, once")
        self._deleted()

    @event("Deleted")
    def _deleted(self) -> None:
        self.deleted = True

    # -- renewal -------------------------------------------------------------------------
    def renew(self, today: date, offers: dict[str, Offer]) -> list[Movement]:
        """Every period that ended by ``today``: a subscription set to cancel ends with its
        period; one running renews at each plan's current version (``offers`` by plan
        id) and a scheduled package change takes effect, each period charged in full."""
        movements: list[Movement] = []
        for _ in range(MAX_PERIODS_PER_RENEWAL):
            if self.status != SubscriptionStatus.ACTIVE or self.period_end > today:
                break
            if self.cancel_at_period_end:
                stopped = [self._stopped(item, self.period_end) for item in self.items]
                self._cancelled(on=self.period_end, items=[item.plain() for item, _ in stopped])
                break
            start = self.period_end
            end = next_period_start(start, self.period, self.anchor_day)
            package = self.scheduled_package or offers.get(self.package.offer.plan_id, self.package.offer)
            offered = [(package, 1)] + [(offers.get(i.offer.plan_id, i.offer), i.quantity) for i in self.addons.values()]
            items = [Item(offer, quantity, start, 0, offer.price * quantity) for offer, quantity in offered]
            self._renewed(period_start=start, period_end=end, items=[item.plain() for item in items])
            movements.extend(Movement(False, item.amount, _kind(item.offer), self._text(item, "for", start, end))
                             for item in items)
        return _moving(movements)

    @event("Renewed")
    def _renewed(self, period_start: date, period_end: date, items: list[dict[str, Any]]) -> None:
        self.period_start, self.period_end = period_start, period_end
        self._set_items([Item.of(x) for x in items])
        self.scheduled_package = None

    # -- rules -------------------------------------------------------------------------
    def _require_active(self, today: date) -> None:
        if self.status != SubscriptionStatus.ACTIVE or self.deleted:
            raise SubscriptionNotActive(f"subscription {self.subscription_id!r} is {self.status}",
                                        subscription_id=self.subscription_id)
        if not self.period_start <= today < self.period_end:
            raise SubscriptionNotActive(f"subscription {self.subscription_id!r} is due for renewal first "
                                        f"(its period ended {self.period_end})", subscription_id=self.subscription_id)

    def _require_same_terms(self, offer: Offer) -> None:
        if offer.currency != self.currency or offer.period != self.period:
            raise InvalidInput(f"{offer.plan_id!r} is billed {offer.period} in {offer.currency}; this subscription "
                               f"{self.period} in {self.currency}", field="plan_id")

    def _started(self, offer: Offer, quantity: int, today: date) -> Item:
        amount = offer.price * quantity
        return Item(offer, quantity, today, 0, prorated(amount, (self.period_end - today).days, self.period_days))

    def _restarted(self, item: Item, today: date) -> Item:
        """Charged up to what it costs if it runs from today to the period's end."""
        days = item.active_before + (self.period_end - today).days
        return replace(item, since=today, charged=prorated(item.amount, days, self.period_days))

    def _stopped(self, item: Item, today: date) -> tuple[Item, Movement | None]:
        """Stopped today: credited down to what its active days cost (None: nothing to credit)."""
        if item.since is None:
            return item, None
        days = item.active_before + (today - item.since).days
        cost = prorated(item.amount, days, self.period_days)
        credit = item.charged - cost
        if credit < 0:
            raise InvariantViolation(f"{item.offer.plan_id} was charged {item.charged}, less than its {cost}")
        stopped = replace(item, since=None, active_before=days, charged=cost)
        if credit == ZERO:
            return stopped, None
        return stopped, Movement(True, credit, _kind(item.offer),
                                 self._text(item, "unused days", today, self.period_end))

    def _set_items(self, items: list[Item]) -> None:
        self.package, self.addons = items[0], {item.offer.plan_id: item for item in items[1:]}

    def _text(self, item: Item, what: str, first: date, end: date) -> str:
        last = date.fromordinal(end.toordinal() - 1)
        quantity = f" x{item.quantity}" if item.quantity != 1 else ""
        return f"{item.offer.name}{quantity} ({self.subscription_id}): {what} {first.isoformat()} - {last.isoformat()}"
