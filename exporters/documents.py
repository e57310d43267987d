"""What a PDF document shows, as plain values: the renderers take these and nothing else.

The bills and invoices read models are built elsewhere; whoever reads them fills these
types. Amounts are the stored ``Decimal`` values (6 places at most); a document checks on
construction that its totals agree with its lines, so a renderer never has to re-add.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from ledger_core.currencies import MINOR_UNITS

# Limits on everything: the layout reserves fixed room for these, and a 100k-line
# document is a report (use the Excel/CSV exports), not a PDF.
MAX_ADDRESS_LINES = 4
MAX_EMAILS = 3
MAX_DOCUMENT_LINES = 20_000
MAX_PAYMENTS = 20
MAX_TEXT_BLOCK_CHARS = 2_000  # terms, notes


class InconsistentDocument(ValueError):
    """A document whose figures disagree with each other (a bug upstream, never printed)."""


@dataclass(frozen=True)
class Party:
    """Who a document is for (the payer) with the details a tax document needs."""

    name: str
    organization: str = ""
    tax_id: str = ""
    address: tuple[str, ...] = ()  # printed one line each
    emails: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise InconsistentDocument("a party needs a name")
        if len(self.address) > MAX_ADDRESS_LINES:
            raise InconsistentDocument(f"at most {MAX_ADDRESS_LINES} address lines")
        if len(self.emails) > MAX_EMAILS:
            raise InconsistentDocument(f"at most {MAX_EMAILS} emails")


@dataclass(frozen=True)
class Issuer:
    """Who issues the document (the seller): printed in every document's header."""

    name: str
    tax_id: str = ""
    address: tuple[str, ...] = ()
    email: str = ""
    phone: str = ""
    website: str = ""

    def __post_init__(self) -> None:
        if len(self.address) > MAX_ADDRESS_LINES:
            raise InconsistentDocument(f"at most {MAX_ADDRESS_LINES} address lines")


@dataclass(frozen=True)
class UsageLine:
    """One line of a bill: a service's usage in the cycle and what it cost."""

    service: str  # e.g. "WhatsApp marketing conversation"
    quantity: Decimal | None  # None: the line has no quantity (a charge, an amount posted as such)
    unit: str
    amount: Decimal  # stored, rounded once when priced
    unit_price: Decimal | None = None
    application: str = ""


@dataclass(frozen=True)
class BillDocument:
    """One bill: an account's consumption of one product in one billing cycle."""

    bill_no: str
    bill_date: date
    billing_cycle: str  # e.g. "2026-11"
    cycle_start: date
    cycle_end: date  # inclusive
    product: str
    organization: str
    application_id: str
    application_name: str
    app_key: str
    account_id: str
    currency: str
    payer: Party
    lines: tuple[UsageLine, ...]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    amount_paid: Decimal
    overdraft_amount: Decimal
    payment_status: str  # e.g. "Paid", "Unpaid", "Partially paid"
    channel_account: str = ""  # e.g. the WhatsApp Business Account id

    def __post_init__(self) -> None:
        _check_currency(self.currency)
        _check_line_count(len(self.lines))
        _check_sum("subtotal", self.subtotal, sum((line.amount for line in self.lines), Decimal(0)))
        _check_sum("total", self.total, self.subtotal + self.tax)


@dataclass(frozen=True)
class InvoiceLine:
    product: str
    quantity: Decimal | None  # None: the line has no quantity (a charge, an amount posted as such)
    unit: str
    amount: Decimal
    application: str = ""
    app_key: str = ""
    description: str = ""


@dataclass(frozen=True)
class InvoicePayment:
    """Money applied to the invoice (a payment or a recharge)."""

    paid_on: date
    reference: str
    method: str
    amount: Decimal


@dataclass(frozen=True)
class InvoiceDocument:
    number: str
    issue_date: date | None  # None until issued (a draft, a voided draft)
    due_date: date | None
    period_start: date
    period_end: date  # inclusive
    account_id: str
    currency: str
    payer: Party
    lines: tuple[InvoiceLine, ...]
    subtotal: Decimal
    tax_rate: Decimal  # a fraction: 0.09 = 9%
    tax: Decimal  # stored, not recomputed here: rounding is the invoicing's business
    total: Decimal
    payments: tuple[InvoicePayment, ...] = ()
    amount_paid: Decimal = Decimal(0)
    outstanding: Decimal = Decimal(0)
    status: str = ""  # e.g. "Issued", "Partially paid", "Paid", "Overdue"
    terms: str = ""
    notes: str = ""
    owed: bool = True  # an issued invoice; a draft or a voided one owes nothing (outstanding 0)

    def __post_init__(self) -> None:
        _check_currency(self.currency)
        _check_line_count(len(self.lines))
        if len(self.payments) > MAX_PAYMENTS:
            raise InconsistentDocument(f"at most {MAX_PAYMENTS} payments on one invoice")
        if len(self.terms) > MAX_TEXT_BLOCK_CHARS or len(self.notes) > MAX_TEXT_BLOCK_CHARS:
            raise InconsistentDocument(f"terms and notes are at most {MAX_TEXT_BLOCK_CHARS} characters")
        _check_sum("subtotal", self.subtotal, sum((line.amount for line in self.lines), Decimal(0)))
        _check_sum("total", self.total, self.subtotal + self.tax)
        _check_sum("amount paid", self.amount_paid, sum((p.amount for p in self.payments), Decimal(0)))
        _check_sum("outstanding", self.outstanding, self.total - self.amount_paid if self.owed else Decimal(0))


@dataclass(frozen=True)
class ReceiptDocument:
    """Proof of money received: a recharge (top-up) or a payment of invoices."""

    number: str
    kind: str  # "recharge" or "payment"
    received_at: datetime
    account_id: str
    currency: str
    amount: Decimal
    method: str
    reference: str
    payer: Party
    applied_to: tuple[str, ...] = field(default=())  # invoice numbers a payment settled
    item: str = ""  # an order's product and quantity

    def __post_init__(self) -> None:
        _check_currency(self.currency)
        if self.kind not in ("recharge", "payment", "order"):
            raise InconsistentDocument(f"a receipt is for a recharge, a payment or an order, not {self.kind!r}")
        if self.amount <= 0:
            raise InconsistentDocument("a receipt is for a positive amount")
        if len(self.applied_to) > MAX_PAYMENTS:
            raise InconsistentDocument(f"at most {MAX_PAYMENTS} invoices on one receipt")


def _check_currency(code: str) -> None:
    if code not in MINOR_UNITS:
        raise InconsistentDocument(f"not an ISO 4217 currency code: {code!r}")


def _check_line_count(count: int) -> None:
    if count > MAX_DOCUMENT_LINES:
        raise InconsistentDocument(f"at most {MAX_DOCUMENT_LINES:,} lines in one PDF document, not {count:,}")


def _check_sum(name: str, stored: Decimal, expected: Decimal) -> None:
    if stored != expected:
        raise InconsistentDocument(f"{name} {stored} does not equal {expected}")
