"""The ledger's read models turned into documents and export rows.

Everything a document prints comes from stored values: amounts are never re-added or
re-rounded here, and each document checks its own totals on construction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from exporters.documents import (
    MAX_PAYMENTS,
    BillDocument,
    InvoiceDocument,
    InvoiceLine,
    InvoicePayment,
    Issuer,
    Party,
    ReceiptDocument,
    UsageLine,
)
from exporters.rows import BalanceDetailRow, BillDetailRow, InvoiceReportRow, OrderReportRow
from ledger_core.cycles import local_date, local_days
from ledger_core.errors import BillNotFound, InvoiceNotFound, TransactionNotFound
from ledger_core.invoicing import DueStatus, due_status
from projections.bills import CLEARED, BillFilter
from projections.orders import OrderRow
from projections.rows import AccountRow, InvoiceRow, MovementType, TransactionRow
from service.exports import iter_bills
from service.ledger_service import LedgerService
from service.settings import Settings

ZERO = Decimal("0.000000")
STATUS_TEXT = {"unpaid": "Unpaid", "partially_paid": "Partially paid", "paid": "Paid", "none_owed": "None owed"}
DUE_TEXT = {"not_due": "Not due", "overdue": "Overdue"}


def issuer_of(settings: Settings) -> Issuer:
    return Issuer(name=settings.issuer_name, tax_id=settings.issuer_tax_id, address=settings.issuer_address,
                  email=settings.issuer_email)


def payer_of(account: AccountRow) -> Party:
    payer = account.payer
    address = tuple(line for line in str(payer.get("address") or "").splitlines() if line.strip())[:4]
    # A name of blanks passes as a line of text but prints as nothing: the account is named instead.
    name = str(payer.get("name") or "").strip() or account.account_id
    return Party(name=name, organization=payer.get("organization") or "", tax_id=payer.get("tax_id") or "",
                 address=address, emails=tuple(payer.get("emails") or ())[:3])


def _folded(payments: list[InvoicePayment]) -> tuple[InvoicePayment, ...]:
    """At most MAX_PAYMENTS rows: partial payments have no limit, so the earliest are summed
    in one row and the rows still add up to the amount paid."""
    if len(payments) <= MAX_PAYMENTS:
        return tuple(payments)
    earlier, kept = payments[:len(payments) - MAX_PAYMENTS + 1], payments[len(payments) - MAX_PAYMENTS + 1:]
    summed = InvoicePayment(paid_on=earlier[-1].paid_on, reference=f"{len(earlier)} earlier payments", method="",
                            amount=sum((p.amount for p in earlier), ZERO))
    return (summed, *kept)


# -- bills -------------------------------------------------------------------------
def bill_document(service: LedgerService, bill_no: str, today: date | None = None) -> BillDocument:
    """``today`` None: the account's (its test clock's, if it has one)."""
    bill = service.view.bill(bill_no)
    if bill is None:
        raise BillNotFound(f"no bill {bill_no!r}", bill_no=bill_no)
    today = today or service.now_for(bill.account_id).date()
    account = service.account_row(bill.account_id)
    zone = account.time_zone
    first, end = local_date(bill.cycle_start, zone), local_date(bill.cycle_end, zone)
    lines = tuple(
        # The product used through which channel account, by which application and AppKey.
        UsageLine(service=" · ".join(x for x in (bill.product, line["channel_account"]) if x),
                  quantity=line["quantity"], unit=line["unit"] or "", amount=line["amount"],
                  application=" / ".join(x for x in (line["application_name"] or line["application_id"],
                                                     line["app_key"]) if x))
        for line in bill.lines
    )
    return BillDocument(
        bill_no=bill.bill_no, bill_date=min(today, end), billing_cycle=f"{first:%Y-%m}", cycle_start=first,
        cycle_end=end - timedelta(days=1), product=bill.product, organization=account.payer.get("organization") or "",
        application_id=_one_or_several(bill.lines, "application_id"),
        application_name=_one_or_several(bill.lines, "application_name"),
        app_key=_one_or_several(bill.lines, "app_key"), channel_account=_one_or_several(bill.lines, "channel_account"),
        account_id=bill.account_id, currency=bill.currency,
        payer=payer_of(account), lines=lines, subtotal=bill.amount, tax=ZERO, total=bill.amount,
        amount_paid=bill.amount if bill.status == CLEARED else ZERO, overdraft_amount=bill.overdraft,
        payment_status=bill.status,
    )


def _one_or_several(lines: list[dict[str, Any]], name: str) -> str:
    """The value all the bill's lines share, else "several" (blank when none is known)."""
    values = {line[name] or "" for line in lines}
    return values.pop() if len(values) == 1 else "several"


def bill_detail_rows(service: LedgerService, query: BillFilter) -> Iterator[BillDetailRow]:
    """One row per channel account, application, AppKey and unit of each bill the filter picks. A bill's
    overdraft is on its first row only, so the column adds up to the bills' overdraft.
    The cycle is named in the account's time zone (each account read once)."""
    zones: dict[str, str] = {}
    for bill in iter_bills(service, query):
        if bill.account_id not in zones:
            zones[bill.account_id] = service.account_row(bill.account_id).time_zone
        cycle = f"{local_date(bill.cycle_start, zones[bill.account_id]):%Y-%m}"
        for n, line in enumerate(bill.lines):
            yield BillDetailRow(
                billing_cycle=cycle, product=bill.product, channel_account=line["channel_account"] or "",
                app_key=line["app_key"] or "", application_id=line["application_id"] or "",
                application_name=line["application_name"] or "",
                service_usage=line["quantity"], usage_unit=line["unit"] or "",
                consumption_amount=line["amount"], currency=bill.currency, payment_status=bill.status,
                overdraft_amount=bill.overdraft if n == 0 else ZERO,
            )


# -- invoices ----------------------------------------------------------------------
def invoice_document(service: LedgerService, invoice_id: str, today: date | None = None) -> InvoiceDocument:
    """``today`` (deciding overdue) None: the account's (its test clock's, if it has one)."""
    view = service.view
    invoice = view.invoice(invoice_id)
    if invoice is None:
        raise InvoiceNotFound(f"no invoice {invoice_id!r}", invoice_id=invoice_id)
    today = today or service.now_for(invoice.account_id).date()
    account = service.account_row(invoice.account_id)
    zone = account.time_zone
    payments = [
        InvoicePayment(paid_on=local_date(p.received_at, zone), reference=p.reference or p.payment_id,
                       method=p.method, amount=a["amount"])
        for p in view.invoice_payments(invoice.invoice_id) for a in p.allocations if a["invoice_id"] == invoice.invoice_id
    ]
    applied_credit = invoice.paid - sum((p.amount for p in payments), ZERO)
    if applied_credit:  # funds and earlier overpayments applied when it was issued or on a recharge
        payments.append(InvoicePayment(paid_on=local_date(invoice.issued_at or invoice.created_at, zone),
                                       reference="credit", method="Funds and credit applied", amount=applied_credit))
    first_day, last_day = local_days(invoice.period_start, invoice.period_end, zone)
    lines = tuple(
        InvoiceLine(product=x.product, quantity=x.quantity, unit=x.unit or "", amount=x.amount,
                    application=x.application_id or "", app_key=x.app_key or "",
                    description=("" if x.description == x.product else x.description)
                    + (f" (late, {x.date_from}..{x.date_to})" if x.late else ""))
        for x in view.invoice_lines(invoice.invoice_id)
    )
    return InvoiceDocument(
        # Exactly what the invoice's JSON holds: no issue or due date before it is issued, and
        # nothing outstanding on a draft or a voided one.
        number=invoice.number or f"DRAFT {invoice.invoice_id}",
        issue_date=local_date(invoice.issued_at, zone) if invoice.issued_at else None,
        due_date=date.fromisoformat(invoice.due_on) if invoice.due_on else None,
        period_start=first_day, period_end=last_day,
        account_id=invoice.account_id, currency=invoice.currency, payer=payer_of(account), lines=lines,
        subtotal=invoice.subtotal, tax_rate=account.tax_rate, tax=invoice.tax, total=invoice.total,
        payments=_folded(payments), amount_paid=invoice.paid, outstanding=invoice.outstanding,
        owed=invoice.status == "approved",
        status=_invoice_status(invoice, today), terms=invoice.terms, notes=invoice.notes,
    )


def _invoice_status(invoice: InvoiceRow, today: date) -> str:
    if invoice.status != "approved":
        return invoice.status.capitalize()
    if invoice.due_on and due_status(date.fromisoformat(invoice.due_on), invoice.outstanding, today).value == "overdue":
        return "Overdue"
    return STATUS_TEXT[invoice.payment_status]


def invoice_report_rows(invoices: Iterable[InvoiceRow], today_of: Callable[[str], date],
                        zone_of: Callable[[str], str]) -> Iterator[InvoiceReportRow]:
    """The invoice report's rows: the figures, dates and statuses of each invoice's JSON,
    its period in its account's time zone (``zone_of(account_id)``), overdue by its
    account's today (``today_of(account_id)``)."""
    for invoice in invoices:
        zone = zone_of(invoice.account_id)
        first_day, last_day = local_days(invoice.period_start, invoice.period_end, zone)
        due = date.fromisoformat(invoice.due_on) if invoice.due_on else None
        yield InvoiceReportRow(
            number=invoice.number or f"DRAFT {invoice.invoice_id}", account_id=invoice.account_id,
            issue_date=local_date(invoice.issued_at, zone) if invoice.issued_at else None, due_date=due,
            period_start=first_day, period_end=last_day,
            currency=invoice.currency, subtotal=invoice.subtotal, tax=invoice.tax, total=invoice.total,
            paid=invoice.paid, outstanding=invoice.outstanding, payment_status=STATUS_TEXT[invoice.payment_status],
            due_status=DUE_TEXT[invoice_due_status(invoice, today_of(invoice.account_id))],
        )


def invoice_due_status(invoice: InvoiceRow, today: date) -> str:
    """not_due or overdue, as the invoice's JSON says: overdue only once issued, owed and past due."""
    if invoice.due_on is None:
        return DueStatus.NOT_DUE.value
    return due_status(date.fromisoformat(invoice.due_on), invoice.outstanding, today).value


def account_rows(service: LedgerService) -> Callable[[str], AccountRow]:
    """account id -> its read-model row, each account read once (for one request's rows)."""
    rows: dict[str, AccountRow] = {}

    def row_of(account_id: str) -> AccountRow:
        if account_id not in rows:
            rows[account_id] = service.account_row(account_id)
        return rows[account_id]

    return row_of


def account_zones(service: LedgerService) -> Callable[[str], str]:
    """account id -> its time zone, each account read once."""
    row_of = account_rows(service)
    return lambda account_id: row_of(account_id).time_zone


def account_days(service: LedgerService) -> Callable[[str], date]:
    """account id -> its today, which decides due status: the UTC day of its now (its test
    clock's, if it has one), each account and clock read once."""
    row_of = account_rows(service)
    real = service.clock().date()
    clocks: dict[str, date] = {}

    def today_of(account_id: str) -> date:
        clock_id = row_of(account_id).test_clock_id
        if clock_id is None:
            return real
        if clock_id not in clocks:
            clocks[clock_id] = service.test_clock_time(clock_id).date()
        return clocks[clock_id]

    return today_of


# -- receipts ----------------------------------------------------------------------
def receipt_document(service: LedgerService, transaction_no: str) -> ReceiptDocument:
    """A receipt for money received: a recharge or a payment, by its transaction number,
    or a paid order, by its order number."""
    if transaction_no.startswith("ord_"):
        return _order_receipt(service, transaction_no)
    row = service.view.transaction(transaction_no)
    if row is None or row.type not in (MovementType.RECHARGE, MovementType.PAYMENT):
        raise TransactionNotFound(f"no recharge or payment {transaction_no!r}", transaction_no=transaction_no)
    account = service.account_row(row.account_id)
    applied: tuple[str, ...] = ()
    if row.type is MovementType.PAYMENT:
        payment = service.view.payment(row.position)
        numbers = [service.view.invoice(a["invoice_id"]) for a in (payment.allocations if payment else [])]
        applied = tuple(i.number for i in numbers if i is not None and i.number)
        if len(applied) > MAX_PAYMENTS:  # one payment may settle any number of invoices
            applied = (*applied[:MAX_PAYMENTS - 1], f"and {len(applied) - MAX_PAYMENTS + 1} more")
    return ReceiptDocument(
        number=row.transaction_no, kind="payment" if row.type is MovementType.PAYMENT else "recharge",
        received_at=row.occurred_at, account_id=row.account_id, currency=account.currency, amount=row.amount,
        method=row.description, reference=row.reference, payer=payer_of(account), applied_to=applied,
    )


def _order_receipt(service: LedgerService, order_id: str) -> ReceiptDocument:
    order = service.view.order(order_id)
    if order is None or order.status != "completed" or order.paid_at is None or order.amount <= 0:
        raise TransactionNotFound(f"no paid order {order_id!r}", transaction_no=order_id)
    account = service.account_row(order.account_id)
    return ReceiptDocument(
        number=order.order_id, kind="order", received_at=order.paid_at, account_id=order.account_id,
        currency=order.currency, amount=order.amount, method=order.payment_method or "",
        reference=order.payment_reference, payer=payer_of(account),
        item=f"{order.product} x {order.quantity.normalize():f}")


def balance_detail_rows(transactions: Iterable[TransactionRow], currency: str) -> Iterator[BalanceDetailRow]:
    for row in transactions:
        yield BalanceDetailRow(
            time=row.booked_at,
            transaction_no=row.transaction_no,
            type=row.type.value,
            item=row.item,
            application=row.application_id or "",
            amount=row.amount,
            balance_after=row.balance_after,
            currency=currency,
        )


def order_report_rows(orders: Iterable[OrderRow]) -> Iterator[OrderReportRow]:
    """One row per order, as the orders export shows it."""
    for r in orders:
        yield OrderReportRow(order_no=r.order_id, account_id=r.account_id, kind=r.kind, product=r.product,
                             status=r.status, quantity=r.quantity, amount=r.amount, currency=r.currency,
                             created_at=r.created_at, paid_at=r.paid_at, payment_method=r.payment_method or "",
                             paid_by=r.paid_by, resource_id=r.resource_id or "")
