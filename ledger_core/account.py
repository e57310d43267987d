"""The Account aggregate: one customer's money, in one currency.

Public methods validate and decide; the private ``@event`` methods only change state,
because the library runs their bodies again every time the account is rebuilt from its
events. No clock, no I/O in them: times arrive as arguments.

State is kept in plain attributes (str, Decimal, dict) so snapshots need no custom
transcoding; ``figures`` rebuilds the value object from them on demand.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from ledger_core.errors import (
    InsufficientCredits,
    InvalidInput,
    InvoiceModeChangeBlocked,
    ReservationExpired,
    ReservationNotFound,
    SettleExceedsHold,
    TooManyOpenReservations,
)
from ledger_core.figures import ZERO, BillingMode, Figures, InvoiceMode, UsagePolicy
from ledger_core.money import Money, parse_amount, parse_currency

# Fixed forever: account UUIDs are derived from the client's account id with it.
LEDGER_NAMESPACE = UUID("4f1f6a52-3c0e-5b7e-9a57-2d3c6e1b0a11")
ACCOUNT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
MAX_OPEN_HOLDS = 10_000  # per account; a snapshot carries them all
MAX_TAX_RATE = Decimal(1)


def account_uuid(account_id: str) -> UUID:
    return uuid5(LEDGER_NAMESPACE, f"account/{account_id}")


def transaction_no(account_id: str, version: int) -> str:
    """The human reference of a money movement: stable, unique, derived from the event."""
    return f"{account_id}:{version:08d}"


def parse_account_id(account_id: object) -> str:
    if not isinstance(account_id, str) or not ACCOUNT_ID_PATTERN.match(account_id):
        raise InvalidInput(
            "account_id must be 1-64 characters of letters, digits, '.', '_', ':' or '-', "
            "starting with a letter or digit",
            field="account_id",
        )
    return account_id


class Account(Aggregate):
    @staticmethod
    def create_id(account_id: str) -> UUID:
        return account_uuid(account_id)

    # -- opening ---------------------------------------------------------------
    @classmethod
    def open(
        cls,
        *,
        account_id: str,
        currency: str,
        billing_mode: str,
        invoice_mode: str,
        credit_limit: object = ZERO,
        usage_policy: str = UsagePolicy.ALLOW_OVERDRAFT,
        cycle_anchor_day: int = 1,
        tax_rate: object = ZERO,
        payer: dict[str, Any] | None = None,
    ) -> Account:
        rate = parse_amount(tax_rate, field="tax_rate")
        if not ZERO <= rate < MAX_TAX_RATE:
            raise InvalidInput("tax_rate must be a fraction from 0 up to 1 (0.09 = 9%)", field="tax_rate")
        if not 1 <= cycle_anchor_day <= 31:
            raise InvalidInput("cycle_anchor_day must be 1..31", field="cycle_anchor_day")
        return cls(
            account_id=parse_account_id(account_id),
            currency=parse_currency(currency),
            billing_mode=_enum(BillingMode, billing_mode, "billing_mode").value,
            invoice_mode=_enum(InvoiceMode, invoice_mode, "invoice_mode").value,
            usage_policy=_enum(UsagePolicy, usage_policy, "usage_policy").value,
            credit_limit=_credit_limit(credit_limit),
            cycle_anchor_day=cycle_anchor_day,
            tax_rate=rate,
            payer=dict(payer or {}),
        )

    @event("AccountOpened")
    def __init__(
        self,
        account_id: str,
        currency: str,
        billing_mode: str,
        invoice_mode: str,
        usage_policy: str,
        credit_limit: Decimal,
        cycle_anchor_day: int,
        tax_rate: Decimal,
        payer: dict[str, Any],
    ) -> None:
        self.account_id = account_id
        self.currency = currency
        self.billing_mode = billing_mode
        self.invoice_mode = invoice_mode
        self.usage_policy = usage_policy
        self.credit_limit = credit_limit
        self.cycle_anchor_day = cycle_anchor_day
        self.tax_rate = tax_rate
        self.payer = payer
        self.expecting_invoice = ZERO
        self.amount_due = ZERO
        self.reserved = ZERO
        self.holds: dict[str, dict[str, Any]] = {}

    # -- figures ---------------------------------------------------------------
    @property
    def figures(self) -> Figures:
        return Figures(
            billing_mode=BillingMode(self.billing_mode),
            invoice_mode=InvoiceMode(self.invoice_mode),
            credit_limit=self.credit_limit,
            expecting_invoice=self.expecting_invoice,
            amount_due=self.amount_due,
            reserved=self.reserved,
        )

    def _set_figures(self, figures: Figures) -> None:
        figures.checked()
        self.expecting_invoice = figures.expecting_invoice
        self.amount_due = figures.amount_due
        self.reserved = figures.reserved
        self.credit_limit = figures.credit_limit
        self.invoice_mode = figures.invoice_mode.value

    @property
    def next_transaction_no(self) -> str:
        return transaction_no(self.account_id, self.version + 1)

    def _own(self, money: Money) -> Decimal:
        return money.require_currency(self.currency).amount

    # -- money in --------------------------------------------------------------
    def recharge(self, money: Money, *, reference: str, method: str) -> str:
        amount = self._own(money)
        if amount <= 0:
            raise InvalidInput("a recharge amount must be positive", field="amount")
        number = self.next_transaction_no
        self._recharged(amount=amount, reference=reference, method=method)
        return number

    @event("Recharged")
    def _recharged(self, amount: Decimal, reference: str, method: str) -> None:
        self._set_figures(self.figures.after_money_in(amount))

    # -- money out -------------------------------------------------------------
    def record_usage(
        self,
        cost: Money,
        *,
        product: str,
        application_id: str | None,
        app_key: str | None,
        quantity: Decimal | None,
        unit: str | None,
        unit_price: Decimal | None,
        occurred_at: datetime,
        idempotency_key: str,
    ) -> str:
        amount = self._own(cost)
        if amount < 0:
            raise InvalidInput("a usage cost must not be negative", field="amount")
        if self.usage_policy == UsagePolicy.BLOCK:
            self._require_usable(amount)
        number = self.next_transaction_no
        self._usage_recorded(
            amount=amount,
            product=product,
            application_id=application_id,
            app_key=app_key,
            quantity=quantity,
            unit=unit,
            unit_price=unit_price,
            occurred_at=occurred_at,
            idempotency_key=idempotency_key,
        )
        return number

    @event("UsageRecorded")
    def _usage_recorded(
        self,
        amount: Decimal,
        product: str,
        application_id: str | None,
        app_key: str | None,
        quantity: Decimal | None,
        unit: str | None,
        unit_price: Decimal | None,
        occurred_at: datetime,
        idempotency_key: str,
    ) -> None:
        self._set_figures(self.figures.after_usage(amount))

    def post_charge(self, cost: Money, *, kind: str, description: str, idempotency_key: str) -> str:
        amount = self._own(cost)
        if amount < 0:
            raise InvalidInput("a charge must not be negative", field="amount")
        number = self.next_transaction_no
        self._charge_posted(amount=amount, kind=kind, description=description, idempotency_key=idempotency_key)
        return number

    @event("ChargePosted")
    def _charge_posted(self, amount: Decimal, kind: str, description: str, idempotency_key: str) -> None:
        self._set_figures(self.figures.after_charge(amount))

    # -- holds -----------------------------------------------------------------
    def reserve(self, money: Money, *, reservation_id: str, expires_at: datetime | None) -> None:
        amount = self._own(money)
        if amount <= 0:
            raise InvalidInput("a reservation amount must be positive", field="amount")
        if len(self.holds) >= MAX_OPEN_HOLDS:
            raise TooManyOpenReservations(f"an account may hold at most {MAX_OPEN_HOLDS} open reservations")
        self._require_usable(amount)
        self._credits_reserved(reservation_id=reservation_id, amount=amount, expires_at=expires_at)

    @event("CreditsReserved")
    def _credits_reserved(self, reservation_id: str, amount: Decimal, expires_at: datetime | None) -> None:
        self.holds[reservation_id] = {"amount": amount, "expires_at": expires_at}
        self._set_figures(self.figures.after_reserve(amount))

    def settle(
        self,
        reservation_id: str,
        cost: Money,
        *,
        now: datetime,
        product: str,
        application_id: str | None,
        app_key: str | None,
        quantity: Decimal | None,
        unit: str | None,
    ) -> str:
        hold = self._open_hold(reservation_id)
        amount = self._own(cost)
        if amount < 0:
            raise InvalidInput("a settled amount must not be negative", field="amount")
        if amount > hold["amount"]:
            raise SettleExceedsHold(
                "the final amount is larger than the hold",
                hold=hold["amount"],
                amount=amount,
            )
        if hold["expires_at"] is not None and now >= hold["expires_at"]:
            raise ReservationExpired("the hold expired before it was settled", expires_at=hold["expires_at"])
        number = self.next_transaction_no
        self._reservation_settled(
            reservation_id=reservation_id,
            hold_amount=hold["amount"],
            amount=amount,
            product=product,
            application_id=application_id,
            app_key=app_key,
            quantity=quantity,
            unit=unit,
            occurred_at=now,
        )
        return number

    @event("ReservationSettled")
    def _reservation_settled(
        self,
        reservation_id: str,
        hold_amount: Decimal,
        amount: Decimal,
        product: str,
        application_id: str | None,
        app_key: str | None,
        quantity: Decimal | None,
        unit: str | None,
        occurred_at: datetime,
    ) -> None:
        del self.holds[reservation_id]
        self._set_figures(self.figures.after_settle(hold_amount, amount))

    def release(self, reservation_id: str, *, reason: str) -> None:
        if reason not in RELEASE_REASONS:
            raise InvalidInput(f"reason must be one of {', '.join(RELEASE_REASONS)}", field="reason")
        hold = self._open_hold(reservation_id)
        self._reservation_released(reservation_id=reservation_id, hold_amount=hold["amount"], reason=reason)

    def expire_holds(self, now: datetime) -> list[str]:
        """Releases every hold whose expiry has passed; returns their ids."""
        due = [rid for rid, hold in self.holds.items() if hold["expires_at"] is not None and hold["expires_at"] <= now]
        for reservation_id in due:
            self.release(reservation_id, reason="expired")
        return due

    @event("ReservationReleased")
    def _reservation_released(self, reservation_id: str, hold_amount: Decimal, reason: str) -> None:
        del self.holds[reservation_id]
        self._set_figures(self.figures.after_release(hold_amount))

    # -- settings --------------------------------------------------------------
    def change_credit_limit(self, credit_limit: object) -> None:
        limit = _credit_limit(credit_limit)
        if limit != self.credit_limit:
            self._credit_limit_changed(credit_limit=limit)

    @event("CreditLimitChanged")
    def _credit_limit_changed(self, credit_limit: Decimal) -> None:
        self._set_figures(self.figures.with_credit_limit(credit_limit))

    def change_invoice_mode(self, invoice_mode: str) -> None:
        mode = _enum(InvoiceMode, invoice_mode, "invoice_mode")
        if mode == self.invoice_mode:
            return
        if mode is InvoiceMode.NONE and self.amount_due != 0:
            raise InvoiceModeChangeBlocked(
                "amount due must be settled to 0 before switching to invoice mode none",
                amount_due=self.amount_due,
            )
        self._invoice_mode_changed(invoice_mode=mode.value)

    @event("InvoiceModeChanged")
    def _invoice_mode_changed(self, invoice_mode: str) -> None:
        self._set_figures(self.figures.with_invoice_mode(InvoiceMode(invoice_mode)))

    def change_usage_policy(self, usage_policy: str) -> None:
        policy = _enum(UsagePolicy, usage_policy, "usage_policy")
        if policy != self.usage_policy:
            self._usage_policy_changed(usage_policy=policy.value)

    @event("UsagePolicyChanged")
    def _usage_policy_changed(self, usage_policy: str) -> None:
        self.usage_policy = usage_policy

    def change_billing_details(self, *, payer: dict[str, Any] | None = None, tax_rate: object = None) -> None:
        new_payer = self.payer if payer is None else {**self.payer, **payer}
        new_rate = self.tax_rate if tax_rate is None else parse_amount(tax_rate, field="tax_rate")
        if not ZERO <= new_rate < MAX_TAX_RATE:
            raise InvalidInput("tax_rate must be a fraction from 0 up to 1 (0.09 = 9%)", field="tax_rate")
        if new_payer != self.payer or new_rate != self.tax_rate:
            self._billing_details_changed(payer=new_payer, tax_rate=new_rate)

    @event("BillingDetailsChanged")
    def _billing_details_changed(self, payer: dict[str, Any], tax_rate: Decimal) -> None:
        self.payer = payer
        self.tax_rate = tax_rate

    # -- rules -----------------------------------------------------------------
    def _require_usable(self, amount: Decimal) -> None:
        usable = self.figures.usable_credits
        if usable - amount < 0:
            raise InsufficientCredits(
                f"usable credits {usable} do not cover {amount}",
                usable_credits=usable,
                requested=amount,
            )

    def _open_hold(self, reservation_id: str) -> dict[str, Any]:
        hold = self.holds.get(reservation_id)
        if hold is None:
            raise ReservationNotFound(f"no open reservation {reservation_id!r}", reservation_id=reservation_id)
        return hold


RELEASE_REASONS = ("failed", "expired", "cancelled")
ACCOUNT_EVENT_TYPES = (
    "AccountOpened", "Recharged", "UsageRecorded", "ChargePosted", "CreditsReserved", "ReservationSettled",
    "ReservationReleased", "CreditLimitChanged", "InvoiceModeChanged", "UsagePolicyChanged", "BillingDetailsChanged",
)
CHARGE_KINDS = ("subscription", "addon", "service", "hardware")


def _enum(kind: type[Any], value: object, field: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidInput(f"{field} must be one of {allowed}", field=field) from None


def _credit_limit(value: object) -> Decimal:
    limit = parse_amount(value, field="credit_limit")
    if limit < 0:
        raise InvalidInput("credit_limit must not be negative", field="credit_limit")
    return limit
