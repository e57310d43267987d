"""The catalog: packages and add-ons a customer subscribes to, each priced and versioned.

A plan is an aggregate. Its price and included allowances form numbered versions: a price
change appends a version and never rewrites one, so a charge already posted keeps its price
and a running subscription keeps the version it took until its next renewal, unless the
admin applies the new version to running subscriptions at once (``applies_now``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from ledger_core.account import LEDGER_NAMESPACE
from ledger_core.account_settings import parse_choice
from ledger_core.errors import InvalidInput, PlanRetired
from ledger_core.money import parse_amount, parse_currency

PLAN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_PLAN_NAME = 200
MAX_ALLOWANCES = 20  # seats, chatbot sessions, usage allowances per product...
MAX_VERSIONS = 1_000


class PlanKind(StrEnum):
    PACKAGE = "package"  # what a subscription is of: one at a time
    ADDON = "addon"  # bought on top of a package: an AI assistant, a webhook integration, an extra pack


class Period(StrEnum):
    MONTHLY = "monthly"
    YEARLY = "yearly"


@dataclass(frozen=True)
class PlanVersion:
    version: int  # 1, 2, ...
    price: Decimal  # per period, before tax
    allowances: dict[str, Decimal] = field(default_factory=dict)  # name -> included amount per period
    applies_now: bool = False  # running subscriptions take it at once, not at their next renewal

    def __deepcopy__(self, memo: dict[int, Any]) -> PlanVersion:
        return replace(self, allowances=dict(self.allowances))


def plan_uuid(plan_id: str) -> UUID:
    return uuid5(LEDGER_NAMESPACE, f"plan/{plan_id}")


def parse_plan_id(plan_id: object, field_name: str = "plan_id") -> str:
    if not isinstance(plan_id, str) or not PLAN_ID_PATTERN.fullmatch(plan_id):
        raise InvalidInput("a plan id is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
                           field=field_name)
    return plan_id


def parse_price(price: object) -> Decimal:
    amount = parse_amount(price, field="price")
    if amount < 0:
        raise InvalidInput("a price must not be negative", field="price")
    return amount


def parse_allowances(allowances: object) -> dict[str, Decimal]:
    if not isinstance(allowances, dict) or len(allowances) > MAX_ALLOWANCES:
        raise InvalidInput(f"allowances are at most {MAX_ALLOWANCES} names with amounts", field="allowances")
    parsed: dict[str, Decimal] = {}
    for name, amount in allowances.items():
        if not isinstance(name, str) or not PLAN_ID_PATTERN.fullmatch(name):
            raise InvalidInput("an allowance is named like a plan id (e.g. chatbot_sessions)", field="allowances")
        value = parse_amount(amount, field=f"allowances.{name}")
        if value < 0:
            raise InvalidInput("an allowance must not be negative", field=f"allowances.{name}")
        parsed[name] = value
    return parsed


@dataclass(frozen=True)
class Offer:
    """One version of a plan, as a subscription takes it."""

    plan_id: str
    kind: str
    name: str
    period: str
    currency: str
    version: int
    price: Decimal
    allowances: dict[str, Decimal] = field(default_factory=dict)


class Plan(Aggregate):
    @staticmethod
    def create_id(plan_id: str) -> UUID:
        return plan_uuid(plan_id)

    @classmethod
    def create(cls, *, plan_id: str, kind: str, name: str, period: str, currency: str, price: object,
               allowances: object = None) -> Plan:
        if not isinstance(name, str) or not 0 < len(name) <= MAX_PLAN_NAME:
            raise InvalidInput(f"a plan's name is 1-{MAX_PLAN_NAME} characters", field="name")
        return cls(plan_id=parse_plan_id(plan_id), kind=parse_choice(PlanKind, kind, "kind").value, name=name,
                   period=parse_choice(Period, period, "period").value, currency=parse_currency(currency),
                   price=parse_price(price), allowances=parse_allowances(allowances or {}))

    @event("Created")
    def __init__(self, plan_id: str, kind: str, name: str, period: str, currency: str, price: Decimal,
                 allowances: dict[str, Decimal]) -> None:
        self.plan_id = plan_id
        self.kind = kind
        self.name = name
        self.period = period
        self.currency = currency
        self.versions = [PlanVersion(1, price, dict(allowances))]
        self.retired = False

    @property
    def current(self) -> PlanVersion:
        return self.versions[-1]

    def offer(self) -> Offer:
        """The current version, as a new subscription or a renewal takes it."""
        v = self.current
        return Offer(self.plan_id, self.kind, self.name, self.period, self.currency, v.version, v.price,
                     dict(v.allowances))

    def version_of(self, number: int) -> PlanVersion:
        if not 1 <= number <= len(self.versions):
            raise InvalidInput(f"plan {self.plan_id!r} has no version {number}", field="version")
        return self.versions[number - 1]

    def reprice(self, price: object, allowances: object = None, *, applies_now: bool = False) -> PlanVersion:
        """A new version; ``allowances`` None keeps the current ones."""
        if len(self.versions) >= MAX_VERSIONS:
            raise InvalidInput(f"a plan has at most {MAX_VERSIONS} versions", field="price")
        kept = self.current.allowances if allowances is None else parse_allowances(allowances)
        self._repriced(version=len(self.versions) + 1, price=parse_price(price), allowances=dict(kept),
                       applies_now=bool(applies_now))
        return self.current

    @event("Repriced")
    def _repriced(self, version: int, price: Decimal, allowances: dict[str, Decimal], applies_now: bool) -> None:
        self.versions.append(PlanVersion(version, price, dict(allowances), applies_now))

    def retire(self) -> None:
        """No new subscriptions or add-ons of it; running ones go on and renew."""
        if not self.retired:
            self._retired()

    @event("Retired")
    def _retired(self) -> None:
        self.retired = True

    def require_offered(self) -> None:
        if self.retired:
            raise PlanRetired(f"plan {self.plan_id!r} is retired: no new subscriptions", plan_id=self.plan_id)
