"""The rows of the read models, as plain values (no SQL here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from ledger_core.cycles import Bound
from ledger_core.figures import Figures


class MovementType(StrEnum):
    """Balance-detail types shown to the customer."""

    RECHARGE = "Recharge"  # money in
    EXPENSE = "Expense"  # usage, charges, settled holds
    PAYMENT = "Payment"  # money in against invoices
    TAX = "Tax"  # the tax an issued invoice adds
    SYSTEM = "System"  # ledger-made corrections (refunds, adjustments)


MOVEMENT_TYPES = {kind.value: kind for kind in MovementType}  # by value, for rows read back (a page holds many)


@dataclass
class AccountRow:
    aggregate_id: str  # the Account aggregate's UUID, as text: how later events name the account
    account_id: str
    currency: str
    usage_policy: str
    cycle_anchor_day: int
    tax_rate: Decimal
    payer: dict[str, Any]
    figures: Figures
    opened_at: datetime
    updated_at: datetime
    version: int
    position: int  # notification id of the last event applied to this account
    # time_zone, payment_terms_days, drafts_need_approval, cycle_running, test_clock_id (if attached)
    billing_settings: dict[str, Any] = field(default_factory=dict)
    low_balance_threshold: Decimal | None = None  # None: no LowBalance signal

    @property
    def time_zone(self) -> str:
        """The IANA zone the account's days and cycles are counted in."""
        return str(self.billing_settings.get("time_zone", "UTC"))

    @property
    def test_clock_id(self) -> str | None:
        """The test clock whose time is the account's "now"; None: real time."""
        return self.billing_settings.get("test_clock_id")


@dataclass(slots=True)  # made for every money movement in a replay: no frozen-init cost
class TransactionRow:
    position: int
    account_id: str
    transaction_no: str
    booked_at: datetime
    occurred_at: datetime
    type: MovementType
    item: str
    amount: Decimal  # signed: + CR, - DR
    balance_after: Decimal  # current balance after this movement
    product: str | None = None
    application_id: str | None = None
    app_key: str | None = None
    quantity: Decimal | None = None
    unit: str | None = None
    unit_price: Decimal | None = None
    reference: str = ""
    description: str = ""
    application_name: str | None = None


@dataclass(slots=True)
class EventRow:
    """One event of an account: where it stands in the log and when it happened."""

    position: int
    account_id: str
    version: int
    type: str
    time: datetime


@dataclass(frozen=True)
class AccountFilter:
    """Finding customers: text in the account id or the payer's name, organization or
    e-mails; modes and currency; who owes on billed invoices; who is in overdraft."""

    text: str | None = None
    billing_mode: str | None = None
    invoice_mode: str | None = None
    currency: str | None = None
    has_amount_due: bool | None = None  # amount due below 0 (DR: owed on billed invoices)
    in_overdraft: bool | None = None
    accounts: tuple[str, ...] | None = None  # only these (a scoped key's)
    newest_first: bool = False
    after: tuple[str, str] | None = None  # the cursor: (opened_at as text, account_id) of the last row shown


@dataclass(frozen=True)
class EventFilter:
    account_id: str
    type: str | None = None
    time_from: datetime | None = None  # inclusive
    time_to: datetime | None = None  # exclusive
    after_position: int | None = None  # the page cursor


@dataclass(frozen=True)
class HoldRow:
    account_id: str
    reservation_id: str
    amount: Decimal
    reserved_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class TransactionFilter:
    account_id: str
    type: str | None = None
    product: str | None = None
    booked_from: datetime | None = None  # inclusive: when the ledger booked it
    booked_to: datetime | None = None  # exclusive
    occurred_from: datetime | None = None  # inclusive: when the usage happened, as its sender said
    occurred_to: datetime | None = None  # exclusive
    application_id: str | None = None
    text: str | None = None  # substring of reference, product, application name or transaction no
    before_position: int | None = None  # the page cursor: rows older than this
    as_of_position: int | None = None  # only rows up to this log position ...
    as_of_time: datetime | None = None  # ... or booked up to this moment


@dataclass
class Page:
    rows: list[TransactionRow] = field(default_factory=list)
    next_before_position: int | None = None


@dataclass(slots=True)
class InvoiceRow:
    invoice_id: str
    account_id: str
    kind: str
    status: str
    currency: str
    period_start: datetime
    period_end: datetime
    created_at: datetime
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    description: str
    terms: str
    notes: str
    created_position: int
    number: str | None = None
    issued_at: datetime | None = None
    due_on: str | None = None  # ISO date, in the account's time zone
    paid: Decimal = Decimal("0.000000")
    outstanding: Decimal = Decimal("0.000000")
    payment_status: str = "unpaid"
    updated_at: datetime | None = None
    period_first_day: str = ""  # ISO local days of the period (ledger_core/cycles.py local_days), which
    period_last_day: str = ""  # day and month filters compare


@dataclass(slots=True)
class InvoiceLineRow:
    invoice_id: str
    line_no: int
    kind: str
    product: str
    description: str
    application_id: str | None
    app_key: str | None
    quantity: Decimal | None
    unit: str | None
    amount: Decimal
    date_from: str
    date_to: str
    late: bool


@dataclass(slots=True)
class PaymentRow:
    position: int
    payment_id: str
    account_id: str
    received_at: datetime
    amount: Decimal
    method: str
    reference: str
    allocations: list[dict[str, Any]]  # invoice_id, amount, outstanding_after


@dataclass(frozen=True)
class InvoiceFilter:
    account_id: str | None = None
    number: str | None = None
    status: str | None = None
    payment_status: str | None = None
    due_status: str | None = None  # needs ``today``
    period_from: Bound | None = None  # invoices whose period ends after this (a day or month: on or after it)
    period_to: Bound | None = None  # ... and starts before this (a day or month: on or before its last day)
    today: str | None = None  # ISO date deciding overdue
    before_position: int | None = None  # the page cursor
