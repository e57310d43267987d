"""One row of each tabular export (Excel and CSV), as plain values.

Amounts are the ledger's stored ``Decimal`` values; times are timezone-aware (UTC on output).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class BalanceDetailRow:
    """A money movement of an account and the current balance after it."""

    time: datetime
    transaction_no: str
    type: str  # Recharge, Expense, System
    item: str
    application: str
    amount: Decimal  # signed: + CR, - DR
    balance_after: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class BillDetailRow:
    """One bill's usage of an application in a billing cycle."""

    billing_cycle: str  # e.g. "2026-11"
    product: str
    channel_account: str  # e.g. a WhatsApp Business Account id
    app_key: str
    application_id: str
    application_name: str
    service_usage: Decimal | None  # quantity; None where usage was posted as an amount only
    usage_unit: str
    consumption_amount: Decimal
    currency: str
    payment_status: str
    overdraft_amount: Decimal


@dataclass(frozen=True, slots=True)
class InvoiceReportRow:
    number: str
    account_id: str
    issue_date: date | None  # None until issued
    due_date: date | None
    period_start: date
    period_end: date
    currency: str
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    paid: Decimal
    outstanding: Decimal
    payment_status: str  # e.g. Paid, Partially paid, Unpaid
    due_status: str  # e.g. Not due, Due today, Overdue


@dataclass(frozen=True, slots=True)
class OrderReportRow:
    """One order, as the order list shows it."""

    order_no: str
    account_id: str
    kind: str
    product: str
    status: str
    quantity: Decimal
    amount: Decimal
    currency: str
    created_at: datetime
    paid_at: datetime | None
    payment_method: str
    paid_by: str
    resource_id: str
