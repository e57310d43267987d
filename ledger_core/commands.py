"""Commands as values: one frozen dataclass per thing a caller may ask the ledger to do.

Every edge (HTTP, Kafka, CLI, scheduler) builds one of these and hands it to the
ledger's one dispatcher (``Ledger.handle``, or a batch's ``handle``). A command checks
its own fields when it is built (amount grammar, currency codes, client keys), so one
that exists is well formed; whether it may happen is the Account's decision.

Amounts are Decimal; a text given for one is parsed by the same grammar as the wire's
(ledger_core/money.py), which is what lets tests and scripts write ``amount="5"``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import KW_ONLY, MISSING, dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from ledger_core.client_key import parse_client_key
from ledger_core.errors import InvalidInput
from ledger_core.money import parse_amount, parse_currency, parse_unit_price
from ledger_core.usage import UsageLine


class _Unchanged:
    """A setting not given (for settings where None means "off")."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Any = _Unchanged()

# How each kind of field is checked and normalised when a command is built.
_AMOUNT = "amount"
_PRICE = "unit_price"
_CURRENCY = "currency"
_KEY = "key"
_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    _AMOUNT: lambda value, name: parse_amount(value, field=name),
    _PRICE: lambda value, name: parse_unit_price(value, field=name),
    _CURRENCY: lambda value, name: parse_currency(value),
    _KEY: lambda value, name: parse_client_key(value, name),
}


def _checked(check: str, *, default: Any = MISSING) -> Any:
    """A field checked (and normalised) when the command is built; required unless it has a default."""
    return field(default=default, metadata={"check": check})


@dataclass(frozen=True)
class Command:
    def __post_init__(self) -> None:
        for name, check in _checked_fields(type(self)):
            value = getattr(self, name)
            if value is not None and value is not UNCHANGED:
                object.__setattr__(self, name, check(value, name))


@cache
def _checked_fields(cls: type[Command]) -> tuple[tuple[str, Callable[[Any, str], Any]], ...]:
    """(name, check) of the fields a command class checks: worked out once per class (hot path)."""
    return tuple((f.name, _CHECKS[f.metadata["check"]]) for f in fields(cls) if "check" in f.metadata)


@dataclass(frozen=True)
class OpenAccount(Command):
    account_id: str
    _: KW_ONLY
    currency: str
    invoice_mode: str
    billing_mode: str = "prepaid"
    credit_limit: Decimal = _checked(_AMOUNT, default=Decimal(0))
    usage_policy: str = "allow_overdraft"
    cycle_anchor_day: int = 1
    tax_rate: Decimal = _checked(_AMOUNT, default=Decimal(0))
    payer: dict[str, Any] = field(default_factory=dict)
    time_zone: str = "UTC"
    payment_terms_days: int | None = None  # None: the ledger's default terms
    drafts_need_approval: bool | None = None  # None: true for postpaid, false for prepaid
    low_balance_threshold: Decimal | None = _checked(_AMOUNT, default=None)
    test_clock_id: str | None = None  # sandbox time, for good (ledger_core/test_clocks.py)

    def settings(self) -> dict[str, Any]:
        """The Account's opening arguments (terms left out: the Account's default)."""
        given = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: value for name, value in given.items()
                if not (name == "payment_terms_days" and value is None)}


@dataclass(frozen=True)
class UpdateAccount(Command):
    """Any subset of the settings at once: all of them or none. ``low_balance_threshold``
    None turns the signal off, so "not given" is UNCHANGED."""

    account_id: str
    _: KW_ONLY
    credit_limit: Decimal | None = _checked(_AMOUNT, default=None)
    billing_mode: str | None = None
    invoice_mode: str | None = None
    usage_policy: str | None = None
    payer: dict[str, Any] | None = None
    tax_rate: Decimal | None = _checked(_AMOUNT, default=None)
    low_balance_threshold: Decimal | None = _checked(_AMOUNT, default=UNCHANGED)
    cycle_running: bool | None = None
    cycle_anchor_day: int | None = None
    payment_terms_days: int | None = None
    drafts_need_approval: bool | None = None
    time_zone: str | None = None

    def recurring(self) -> dict[str, Any]:
        names = ("cycle_running", "cycle_anchor_day", "payment_terms_days", "drafts_need_approval", "time_zone")
        return {name: getattr(self, name) for name in names}


@dataclass(frozen=True)
class Recharge(Command):
    """Money in. With an idempotency key, once per key."""

    account_id: str
    _: KW_ONLY
    amount: Decimal = _checked(_AMOUNT)
    reference: str = ""
    method: str = ""
    currency: str | None = _checked(_CURRENCY, default=None)
    idempotency_key: str | None = _checked(_KEY, default=None)
    purchaser_email: str | None = None  # the receipt goes to them too, beside the billing contacts


@dataclass(frozen=True)
class RecordUsage(Command):
    """A priced usage charge (a positive cost, DR): ``amount``, or ``unit_price`` x the
    line's quantity. Once per idempotency key."""

    account_id: str
    _: KW_ONLY
    idempotency_key: str = _checked(_KEY)
    line: UsageLine
    amount: Decimal | None = _checked(_AMOUNT, default=None)
    unit_price: Decimal | None = _checked(_PRICE, default=None)
    occurred_at: datetime | None = None  # None: when the ledger books it
    currency: str | None = _checked(_CURRENCY, default=None)

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.amount is None) == (self.unit_price is None):
            raise InvalidInput("give exactly one of amount or unit_price", field="amount")
        if self.unit_price is not None and self.line.quantity is None:
            raise InvalidInput("unit_price needs a quantity", field="quantity")


@dataclass(frozen=True)
class PostCharge(Command):
    """A subscription, add-on, service or hardware charge. Once per idempotency key."""

    account_id: str
    _: KW_ONLY
    idempotency_key: str = _checked(_KEY)
    kind: str
    description: str = ""
    amount: Decimal = _checked(_AMOUNT)
    currency: str | None = _checked(_CURRENCY, default=None)


@dataclass(frozen=True)
class Reserve(Command):
    account_id: str
    _: KW_ONLY
    reservation_id: str = _checked(_KEY)
    amount: Decimal = _checked(_AMOUNT)
    expires_at: datetime | None = None
    currency: str | None = _checked(_CURRENCY, default=None)


@dataclass(frozen=True)
class Settle(Command):
    """The held transaction succeeded: its final amount (at most the hold) becomes usage."""

    account_id: str
    reservation_id: str
    _: KW_ONLY
    amount: Decimal = _checked(_AMOUNT)
    line: UsageLine
    currency: str | None = _checked(_CURRENCY, default=None)


@dataclass(frozen=True)
class Release(Command):
    account_id: str
    reservation_id: str
    _: KW_ONLY
    reason: str = "cancelled"


@dataclass(frozen=True)
class ExpireHolds(Command):
    """Releases every hold of the account whose expiry has passed by ``now``."""

    account_id: str
    now: datetime | None = None


@dataclass(frozen=True)
class CloseCycles(Command):
    """Closes every cycle that ended by ``as_of`` (None: now; never a time after now)."""

    account_id: str
    as_of: datetime | None = None


@dataclass(frozen=True)
class ApproveInvoice(Command):
    invoice_id: str


@dataclass(frozen=True)
class VoidInvoice(Command):
    invoice_id: str


@dataclass(frozen=True)
class PaymentReceived:
    """The payment that came with a manual invoice ("create and claim")."""

    payment_id: str
    method: str = ""
    reference: str = ""
    received_at: datetime | None = None

    def __post_init__(self) -> None:
        parse_client_key(self.payment_id, "payment_id")


@dataclass(frozen=True)
class InvoiceUsage(Command):
    """A manual postpaid invoice of the unbilled usage of ``date_from``..``date_to``
    (local days, inclusive); with ``paid``, the payment is recorded in the same write.
    ``terms`` and ``notes`` None take the issuer's defaults; ``invoice_date`` None is
    today, ``due_date`` None follows the account's payment terms."""

    account_id: str
    _: KW_ONLY
    date_from: date
    date_to: date
    description: str = ""
    terms: str | None = None
    notes: str | None = None
    invoice_date: date | None = None
    due_date: date | None = None
    paid: PaymentReceived | None = None
    idempotency_key: str | None = _checked(_KEY, default=None)


@dataclass(frozen=True)
class InvoiceTopup(Command):
    """A manual prepaid invoice for credits; with ``paid``, and the other fields, as InvoiceUsage."""

    account_id: str
    _: KW_ONLY
    amount: Decimal = _checked(_AMOUNT)
    description: str = ""
    terms: str | None = None
    notes: str | None = None
    invoice_date: date | None = None
    due_date: date | None = None
    currency: str | None = _checked(_CURRENCY, default=None)
    paid: PaymentReceived | None = None
    idempotency_key: str | None = _checked(_KEY, default=None)


@dataclass(frozen=True)
class SetInvoiceDefaults(Command):
    """The issuer's terms & conditions and customer notes, printed on every invoice
    issued afterwards whose request does not give its own. None keeps one."""

    terms: str | None = None
    notes: str | None = None


@dataclass(frozen=True)
class RecordPayment(Command):
    """Applies a payment once per payment id; a repeat reports the first result."""

    account_id: str
    _: KW_ONLY
    payment_id: str = _checked(_KEY)
    amount: Decimal = _checked(_AMOUNT)
    invoice_id: str | None = None
    method: str = ""
    reference: str = ""
    received_at: datetime | None = None
    currency: str | None = _checked(_CURRENCY, default=None)


@dataclass(frozen=True)
class RefundOverpayment(Command):
    """Pays unapplied credit back. With an idempotency key, once per key."""

    account_id: str
    _: KW_ONLY
    amount: Decimal = _checked(_AMOUNT)
    reference: str = ""
    currency: str | None = _checked(_CURRENCY, default=None)
    idempotency_key: str | None = _checked(_KEY, default=None)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.reference:
            raise InvalidInput("a refund needs a reference", field="reference")


@dataclass(frozen=True)
class IssueKey(Command):
    """A new API key of ``role``; scoped to ``accounts`` when given. Its secret is answered once."""

    role: str
    _: KW_ONLY
    name: str = ""
    accounts: tuple[str, ...] | None = None
    key_id: str | None = None  # None: a random one

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.accounts is not None:
            object.__setattr__(self, "accounts", tuple(self.accounts))


@dataclass(frozen=True)
class IssueBootstrapKey(Command):
    """The first admin key of an empty ledger; nothing once any key exists."""


@dataclass(frozen=True)
class RevokeKey(Command):
    key_id: str


@dataclass(frozen=True)
class CreateTestClock(Command):
    """A sandbox clock frozen at ``frozen_time``; ``clock_id`` None: one is made up."""

    frozen_time: datetime
    clock_id: str | None = None


@dataclass(frozen=True)
class AdvanceTestClock(Command):
    """Moves a test clock to ``frozen_time`` (one step: service/test_clocks.py runs the chores between)."""

    clock_id: str
    frozen_time: datetime


# -- catalog and subscriptions (ledger_core/catalog.py, ledger_core/subscription.py) ----------
@dataclass(frozen=True)
class CreatePlan(Command):
    plan_id: str
    _: KW_ONLY
    kind: str
    name: str
    period: str
    currency: str = _checked(_CURRENCY)
    price: Decimal = _checked(_AMOUNT)
    allowances: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RepricePlan(Command):
    """A new version of the plan; running subscriptions take it at their next renewal."""

    plan_id: str
    _: KW_ONLY
    price: Decimal = _checked(_AMOUNT)
    allowances: dict[str, Any] | None = None  # None: the current ones
    applies_now: bool = False  # running subscriptions take it at once (prorated), not at renewal


@dataclass(frozen=True)
class RetirePlan(Command):
    plan_id: str


@dataclass(frozen=True)
class Subscribe(Command):
    """A new subscription to a package, its first period charged in full from today."""

    account_id: str
    _: KW_ONLY
    plan_id: str
    subscription_id: str | None = None  # None: made from the idempotency key, else at random
    subscriber: str = ""  # who subscribed
    payment_method_id: str | None = None  # the payer profile's method that pays it; None: the default
    idempotency_key: str | None = _checked(_KEY, default=None)


@dataclass(frozen=True)
class AddAddon(Command):
    account_id: str
    subscription_id: str
    _: KW_ONLY
    plan_id: str
    quantity: int = 1
    idempotency_key: str | None = _checked(_KEY, default=None)


@dataclass(frozen=True)
class RemoveAddon(Command):
    account_id: str
    subscription_id: str
    _: KW_ONLY
    plan_id: str
    idempotency_key: str | None = _checked(_KEY, default=None)


@dataclass(frozen=True)
class ChangePackage(Command):
    """Upgrade or downgrade, now (prorated) or at the next renewal."""

    account_id: str
    subscription_id: str
    _: KW_ONLY
    plan_id: str
    at_renewal: bool = False
    idempotency_key: str | None = _checked(_KEY, default=None)


@dataclass(frozen=True)
class CancelSubscription(Command):
    account_id: str
    subscription_id: str
    _: KW_ONLY
    at_period_end: bool = True
    idempotency_key: str | None = _checked(_KEY, default=None)


@dataclass(frozen=True)
class ReactivateSubscription(Command):
    account_id: str
    subscription_id: str
    _: KW_ONLY
    idempotency_key: str | None = _checked(_KEY, default=None)


@dataclass(frozen=True)
class DeleteSubscription(Command):
    account_id: str
    subscription_id: str


@dataclass(frozen=True)
class RenewSubscription(Command):
    """Renews (or ends, if set to cancel) every period of the subscription that ended by
    ``as_of`` (None: now; never a time after now)."""

    account_id: str
    subscription_id: str
    as_of: datetime | None = None


@dataclass(frozen=True)
class PreviewSubscriptionChange(Command):
    """What ``change`` would post and do to the next invoice; nothing is written."""

    account_id: str
    change: AddAddon | RemoveAddon | ChangePackage | CancelSubscription | ReactivateSubscription


# -- payer profile (ledger_core/payer_profile.py) -------------------------------------------
@dataclass(frozen=True)
class SaveAddress(Command):
    """Adds the address, or changes the fields given of the one of that id."""

    account_id: str
    address_id: str
    _: KW_ONLY
    address: dict[str, Any] = field(default_factory=dict)
    make_default: bool = False


@dataclass(frozen=True)
class RemoveAddress(Command):
    account_id: str
    address_id: str


@dataclass(frozen=True)
class SavePaymentMethod(Command):
    """Adds the payment method (provider and token needed), or changes the fields given."""

    account_id: str
    payment_method_id: str
    _: KW_ONLY
    changes: dict[str, Any] = field(default_factory=dict)  # provider, token, brand, last4, exp_month, exp_year
    make_default: bool = False


@dataclass(frozen=True)
class RemovePaymentMethod(Command):
    account_id: str
    payment_method_id: str


# -- orders (ledger_core/order.py) ------------------------------------------------------------
@dataclass(frozen=True)
class PlaceOrder(Command):
    account_id: str
    _: KW_ONLY
    kind: str
    product: str
    quantity: Decimal = _checked(_AMOUNT)
    unit_price: Decimal = _checked(_PRICE)
    order_id: str | None = None  # None: made from the idempotency key, else at random
    details: str = ""
    ordered_by: str = ""
    resource_id: str | None = None
    running_price: Decimal | None = _checked(_PRICE, default=None)  # a cloud phone's fee while powered up
    running_unit: str | None = None  # minute or hour
    idempotency_key: str | None = _checked(_KEY, default=None)


@dataclass(frozen=True)
class PayOrder(Command):
    """Completes a pending order: ``method`` balance or external (with its reference)."""

    account_id: str
    order_id: str
    _: KW_ONLY
    method: str
    reference: str = ""
    paid_by: str = ""


@dataclass(frozen=True)
class CancelOrder(Command):
    account_id: str
    order_id: str


@dataclass(frozen=True)
class ReportPower(Command):
    """A cloud phone powered up or down (``state`` on or off), once per ``event_id``."""

    account_id: str
    order_id: str
    _: KW_ONLY
    event_id: str
    state: str
    at: datetime | None = None  # None: now


@dataclass(frozen=True)
class MeterRunningFee(Command):
    """Meters a cloud phone still powered up to ``until`` (a cycle's end), where no power-down came."""

    account_id: str
    order_id: str
    until: datetime


@dataclass(frozen=True)
class ApplyNewPrice(Command):
    """A running subscription takes its plan's newest version at once (prorated)."""

    account_id: str
    subscription_id: str
    plan_id: str
