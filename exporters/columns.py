"""The column sets of the tabular exports: one list per export, shared by Excel and CSV."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar

from exporters.rows import BalanceDetailRow, BillDetailRow, InvoiceReportRow, OrderReportRow

Row = TypeVar("Row")


class Kind(Enum):
    """What a column holds: decides the Excel cell type and number format, and the CSV text."""

    TEXT = "text"
    AMOUNT = "amount"  # Decimal, 6 places at most
    QUANTITY = "quantity"  # Decimal
    DATE = "date"
    DATETIME = "datetime"  # aware; written as UTC


@dataclass(frozen=True)
class Column(Generic[Row]):
    title: str
    kind: Kind
    width: float  # Excel character units
    value: Callable[[Row], Any]


def _text(title: str, width: float, attribute: str) -> Column[Any]:
    return Column(title, Kind.TEXT, width, _getter(attribute))


def _of(kind: Kind, title: str, width: float, attribute: str) -> Column[Any]:
    return Column(title, kind, width, _getter(attribute))


def _getter(attribute: str) -> Callable[[Any], Any]:
    return lambda row: getattr(row, attribute)


BALANCE_DETAIL_COLUMNS: tuple[Column[BalanceDetailRow], ...] = (
    _of(Kind.DATETIME, "Time (UTC)", 20, "time"),
    _text("Transaction no.", 22, "transaction_no"),
    _text("Type", 10, "type"),
    _text("Item", 24, "item"),
    _text("Application", 18, "application"),
    _of(Kind.AMOUNT, "Amount", 16, "amount"),
    _of(Kind.AMOUNT, "Balance after", 18, "balance_after"),
    _text("Currency", 9, "currency"),
)

BILL_DETAIL_COLUMNS: tuple[Column[BillDetailRow], ...] = (
    _text("Billing cycle", 12, "billing_cycle"),
    _text("Product", 22, "product"),
    _text("Channel account", 22, "channel_account"),
    _text("AppKey", 18, "app_key"),
    _text("Application ID", 18, "application_id"),
    _text("Application name", 26, "application_name"),
    _of(Kind.QUANTITY, "Service usage", 14, "service_usage"),
    _text("Unit", 8, "usage_unit"),
    _of(Kind.AMOUNT, "Consumption amount", 20, "consumption_amount"),
    _text("Currency", 9, "currency"),
    _text("Payment status", 15, "payment_status"),
    _of(Kind.AMOUNT, "Overdraft amount", 18, "overdraft_amount"),
)

INVOICE_REPORT_COLUMNS: tuple[Column[InvoiceReportRow], ...] = (
    _text("Invoice no.", 18, "number"),
    _text("Account", 16, "account_id"),
    _of(Kind.DATE, "Issue date", 12, "issue_date"),
    _of(Kind.DATE, "Due date", 12, "due_date"),
    _of(Kind.DATE, "Period start", 12, "period_start"),
    _of(Kind.DATE, "Period end", 12, "period_end"),
    _text("Currency", 9, "currency"),
    _of(Kind.AMOUNT, "Subtotal", 16, "subtotal"),
    _of(Kind.AMOUNT, "Tax", 14, "tax"),
    _of(Kind.AMOUNT, "Total", 16, "total"),
    _of(Kind.AMOUNT, "Paid", 16, "paid"),
    _of(Kind.AMOUNT, "Outstanding", 16, "outstanding"),
    _text("Payment status", 15, "payment_status"),
    _text("Due status", 12, "due_status"),
)

ORDER_REPORT_COLUMNS: tuple[Column[OrderReportRow], ...] = (
    _text("Order no.", 30, "order_no"),
    _text("Account", 16, "account_id"),
    _text("Type", 12, "kind"),
    _text("Product", 24, "product"),
    _text("Status", 16, "status"),
    _of(Kind.QUANTITY, "Quantity", 10, "quantity"),
    _of(Kind.AMOUNT, "Amount", 16, "amount"),
    _text("Currency", 9, "currency"),
    _of(Kind.DATETIME, "Created (UTC)", 20, "created_at"),
    _of(Kind.DATETIME, "Paid (UTC)", 20, "paid_at"),
    _text("Payment method", 14, "payment_method"),
    _text("Paying user", 18, "paid_by"),
    _text("Cloud phone", 18, "resource_id"),
)
