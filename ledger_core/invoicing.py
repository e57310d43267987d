"""Invoicing rules that need no aggregate: what an invoice holds and where money goes.

Unbilled amounts are kept as *entries*: usage summed per local day, product,
application, AppKey and unit; each charge on its own. An invoice takes whole entries,
so no charge can be invoiced twice (the aggregate removes them when it drafts).

Amounts in entries and lines are costs: positive = the customer owes (DR).
State is plain dicts and lists of str/Decimal/datetime so snapshots need no transcoder.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from ledger_core.errors import InvariantViolation
from ledger_core.figures import ZERO

INVOICE_NUMBER_PREFIX = "INV"
MAX_INVOICE_LINES = 5_000  # usage is summed per day and product, so real invoices stay far below
MAX_PAYMENT_TERMS_DAYS = 365
DEFAULT_PAYMENT_TERMS_DAYS = 14


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


def payment_status(total: Decimal, outstanding: Decimal) -> PaymentStatus:
    if outstanding <= 0:
        return PaymentStatus.PAID
    if outstanding < total:
        return PaymentStatus.PARTIALLY_PAID
    return PaymentStatus.UNPAID


def due_status(due: date, outstanding: Decimal, today: date) -> DueStatus:
    return DueStatus.OVERDUE if outstanding > 0 and today > due else DueStatus.NOT_DUE


# -- entries -------------------------------------------------------------------------
def add_into(target: dict[str, Any], amount: Decimal, quantity: Decimal | None) -> None:
    """Sums an amount, and a quantity when there is one, into an entry, line or bill line."""
    target["amount"] += amount
    if quantity is not None:
        target["quantity"] = quantity if target["quantity"] is None else target["quantity"] + quantity


def usage_entry_key(day: date, product: str, application_id: str | None, app_key: str | None,
                    unit: str | None) -> str:
    return "|".join((day.isoformat(), "usage", product, application_id or "", app_key or "", unit or ""))


def add_usage(entries: dict[str, dict[str, Any]], day: date, cost: Decimal, *, product: str,
              application_id: str | None, app_key: str | None, unit: str | None,
              quantity: Decimal | None) -> None:
    key = usage_entry_key(day, product, application_id, app_key, unit)
    entry = entries.get(key)
    if entry is None:
        entries[key] = {
            "date": day.isoformat(), "kind": "usage", "product": product, "description": product,
            "application_id": application_id, "app_key": app_key, "unit": unit,
            "quantity": quantity, "amount": cost,
        }
        return
    add_into(entry, cost, quantity)


def add_single(entries: dict[str, dict[str, Any]], day: date, cost: Decimal, *, kind: str, reference: str,
               description: str, product: str) -> None:
    """A charge or a carried-over balance: an entry of its own, never summed with others."""
    entries[f"{day.isoformat()}|{kind}|{reference}"] = {
        "date": day.isoformat(), "kind": kind, "product": product, "description": description,
        "application_id": None, "app_key": None, "unit": None, "quantity": None, "amount": cost,
    }


def entries_due(entries: Mapping[str, dict[str, Any]], before: date, since: date | None = None) -> list[str]:
    """Keys of the entries dated before ``before`` (and on or after ``since``), oldest first."""
    return sorted(
        key for key, entry in entries.items()
        if entry["date"] < before.isoformat() and (since is None or entry["date"] >= since.isoformat())
    )


def lines_of(entries: Iterable[dict[str, Any]], period_start: date | None) -> list[dict[str, Any]]:
    """Invoice lines: entries summed per product, application, AppKey and unit. Entries
    dated before the period (late usage) get lines of their own that show their dates."""
    lines: dict[tuple[Any, ...], dict[str, Any]] = {}
    for entry in entries:
        late = period_start is not None and entry["date"] < period_start.isoformat()
        single = entry["kind"] != "usage"
        key = (entry["kind"], entry["product"], entry["description"], entry["application_id"], entry["app_key"],
               entry["unit"], late, entry["date"] if single else None)
        line = lines.get(key)
        if line is None:
            lines[key] = {
                "kind": entry["kind"], "product": entry["product"], "description": entry["description"],
                "application_id": entry["application_id"], "app_key": entry["app_key"], "unit": entry["unit"],
                "quantity": entry["quantity"], "amount": entry["amount"], "date_from": entry["date"],
                "date_to": entry["date"], "late": late,
            }
            continue
        add_into(line, entry["amount"], entry["quantity"])
        line["date_from"] = min(line["date_from"], entry["date"])
        line["date_to"] = max(line["date_to"], entry["date"])
    return list(lines.values())


def total_of(items: Iterable[dict[str, Any]]) -> Decimal:
    return sum((item["amount"] for item in items), ZERO)


# -- money applied to invoices ------------------------------------------------------
def allocate(amount: Decimal, open_invoices: Mapping[str, dict[str, Any]],
             first: str | None = None) -> tuple[list[dict[str, Any]], Decimal]:
    """Applies ``amount`` to the named invoice, then to the oldest open ones.
    Returns the allocations (with each invoice's outstanding and paid after) and what is left."""
    if amount < 0:
        raise InvariantViolation(f"only money in is allocated: {amount}")
    order = sorted(open_invoices, key=lambda i: (open_invoices[i]["issued_at"], open_invoices[i]["number"]))
    if first is not None and first in open_invoices:
        order.remove(first)
        order.insert(0, first)
    allocations: list[dict[str, Any]] = []
    left = amount
    for invoice_id in order:
        if left <= 0:
            break
        outstanding = open_invoices[invoice_id]["outstanding"]
        applied = min(left, outstanding)
        if applied <= 0:
            continue
        left -= applied
        after = outstanding - applied
        allocations.append({"invoice_id": invoice_id, "amount": applied, "outstanding_after": after,
                            "paid_after": open_invoices[invoice_id]["total"] - after})
    return allocations, left


def merge_entries(into: dict[str, dict[str, Any]], entries: Mapping[str, dict[str, Any]]) -> None:
    """Puts entries back (a voided draft's), summing with any that arrived meanwhile."""
    for key, entry in entries.items():
        current = into.get(key)
        if current is None:
            into[key] = dict(entry)
            continue
        add_into(current, entry["amount"], entry["quantity"])
