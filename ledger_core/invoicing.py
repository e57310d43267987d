"""Invoicing rules that need no aggregate: what an invoice holds and where money goes.

Amounts in lines are costs: positive = the customer owes (DR). Lines are plain dicts:
events carry them. The account's invoicing state is ledger_core/invoice_book.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from ledger_core.errors import InvoiceDateOutOfRange
from ledger_core.figures import ZERO

INVOICE_NUMBER_PREFIX = "INV"
MAX_INVOICE_LINES = 5_000  # usage is summed per day and product, so real invoices stay far below
MAX_PAYMENT_TERMS_DAYS = 365
DEFAULT_PAYMENT_TERMS_DAYS = 14
MAX_BACKDATE_DAYS = 366  # a manual invoice may be dated back into the last year, no further
MAX_WORDING_CHARS = 2_000  # terms & conditions, customer notes


class InvoiceKind(StrEnum):
    CYCLE = "cycle"  # the monthly invoice a cycle close issues
    CHARGE = "charge"  # itemized mode: one per subscription, add-on, service or hardware charge
    MANUAL = "manual"  # postpaid: usage of a chosen date range
    TOPUP = "topup"  # prepaid: credits bought; paid in full, they become a recharge


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"  # issued
    VOID = "void"


class PaymentStatus(StrEnum):
    UNPAID = "unpaid"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    NONE_OWED = "none_owed"  # a voided invoice: nothing was or is owed on it


class DueStatus(StrEnum):
    NOT_DUE = "not_due"
    OVERDUE = "overdue"


def invoice_id(account_id: str, sequence: int) -> str:
    """An invoice's id from its account's own count: known before it has a number (drafts)."""
    return f"{account_id}:I{sequence:06d}"


def parse_invoice_id(text: str) -> tuple[str, int] | None:
    """(account id, sequence) of an invoice id, or None if the text is not one."""
    account_id, sep, sequence = text.rpartition(":I")
    if not sep or not account_id or not sequence.isdigit():
        return None
    return account_id, int(sequence)


def invoice_number(prefix: str, year: int, sequence: int) -> str:
    return f"{prefix}-{year}-{sequence:06d}"


def due_on(issued: date, terms_days: int) -> date:
    return issued + timedelta(days=terms_days)


@dataclass(frozen=True)
class IssueDates:
    """An invoice's date and due date (local days)."""

    issued: date
    due: date


def issue_dates(today: date, terms_days: int, invoice_date: date | None = None, due_date: date | None = None, *,
                not_before: date | None = None) -> IssueDates:
    """The dates of an invoice issued ``today``, or dated ``invoice_date`` by whoever
    issues it: never after today (an invoice is not issued ahead of time), nor before
    ``not_before`` (the last day it bills) or ``MAX_BACKDATE_DAYS`` ago. The due date
    defaults to the account's terms and falls between the invoice date and the longest
    terms the ledger allows."""
    issued = today if invoice_date is None else invoice_date
    earliest = today - timedelta(days=MAX_BACKDATE_DAYS)
    if not_before is not None:
        earliest = max(earliest, min(not_before, today))
    if not earliest <= issued <= today:
        raise InvoiceDateOutOfRange(f"invoice_date must fall from {earliest} to {today}, not {issued}",
                                    field="invoice_date", earliest=earliest.isoformat(), latest=today.isoformat())
    due = due_on(issued, terms_days) if due_date is None else due_date
    latest_due = due_on(issued, MAX_PAYMENT_TERMS_DAYS)
    if not issued <= due <= latest_due:
        raise InvoiceDateOutOfRange(f"due_date must fall from the invoice date {issued} to {latest_due}, not {due}",
                                    field="due_date", earliest=issued.isoformat(), latest=latest_due.isoformat())
    return IssueDates(issued, due)


@dataclass(frozen=True)
class Wording:
    """Terms & conditions and customer notes an invoice prints."""

    terms: str = ""
    notes: str = ""

    def overridden(self, terms: str | None, notes: str | None) -> Wording:
        """This wording with a request's own texts where it gives them (None: not given)."""
        return Wording(self.terms if terms is None else terms, self.notes if notes is None else notes)


NO_WORDING = Wording()


def payment_status(total: Decimal, outstanding: Decimal) -> PaymentStatus:
    if outstanding <= 0:
        return PaymentStatus.PAID
    if outstanding < total:
        return PaymentStatus.PARTIALLY_PAID
    return PaymentStatus.UNPAID


def due_status(due: date, outstanding: Decimal, today: date) -> DueStatus:
    return DueStatus.OVERDUE if outstanding > 0 and today > due else DueStatus.NOT_DUE


# -- lines ---------------------------------------------------------------------------
def add_into(target: dict[str, Any], amount: Decimal, quantity: Decimal | None) -> None:
    """Sums an amount, and a quantity when there is one, into an invoice or bill line."""
    target["amount"] += amount
    if quantity is not None:
        target["quantity"] = quantity if target["quantity"] is None else target["quantity"] + quantity


def lines_of(entries: Iterable[Any], period_start: date | None) -> list[dict[str, Any]]:
    """Invoice lines of unbilled entries (ledger_core/invoice_book.py Entry): summed per
    product, application, AppKey and unit. Entries dated before the period (late usage)
    get lines of their own that show their dates."""
    lines: dict[tuple[Any, ...], dict[str, Any]] = {}
    for entry in entries:
        late = period_start is not None and entry.date < period_start.isoformat()
        single = entry.kind != "usage"
        key = (entry.kind, entry.product, entry.description, entry.application_id, entry.app_key, entry.unit, late,
               entry.date if single else None)
        line = lines.get(key)
        if line is None:
            lines[key] = {
                "kind": entry.kind, "product": entry.product, "description": entry.description,
                "application_id": entry.application_id, "app_key": entry.app_key, "unit": entry.unit,
                "quantity": entry.quantity, "amount": entry.amount, "date_from": entry.date,
                "date_to": entry.date, "late": late,
            }
            continue
        add_into(line, entry.amount, entry.quantity)
        line["date_from"] = min(line["date_from"], entry.date)
        line["date_to"] = max(line["date_to"], entry.date)
    return list(lines.values())


def total_of(lines: Iterable[dict[str, Any]]) -> Decimal:
    return sum((line["amount"] for line in lines), ZERO)
