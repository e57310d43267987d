"""Hand-built documents and rows, independent of the read models (edge cases on demand):
used by the tests, the sample renderer in tools/ and bench/export.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from exporters.documents import (
    BillDocument,
    InvoiceDocument,
    InvoiceLine,
    InvoicePayment,
    Issuer,
    Party,
    ReceiptDocument,
    UsageLine,
)
from exporters.rows import BalanceDetailRow, BillDetailRow, InvoiceReportRow

CHINESE_NAME = "北京星河通信科技有限公司"
TURKISH_NAME = "Şirket Ünal Ğ İletişim A.Ş."
ARABIC_NAME = "شركة الاتصالات السعودية"

ISSUER = Issuer(
    name="Ledger Cloud Communications Pte. Ltd.",
    tax_id="GST 201912345K",
    address=("1 Marina Boulevard #28-00", "Singapore 018989"),
    email="billing@ledger.test",
    phone="+65 6000 0000",
    website="ledger.test",
)

PAYER = Party(
    name=TURKISH_NAME,
    organization=CHINESE_NAME,
    tax_id="TR-1234567890",
    address=(ARABIC_NAME, "Büyükdere Cd. No:185", "34394 Şişli/İstanbul", "Türkiye"),
    emails=("finans@unal.test",),
)

_SERVICES = ("WhatsApp marketing conversation", "WhatsApp utility conversation", "SMS to +90",
             "Voice minutes (outbound)")
_PRICES = (Decimal("0.0109"), Decimal("0.0042"), Decimal("0.000009"), Decimal("0.0123456"))


def usage_line(number: int) -> UsageLine:
    """A deterministic line: amounts of up to 6 places, the way usage is priced."""
    kind = number % len(_SERVICES)
    quantity = Decimal(1 + number % 97)
    unit_price = _PRICES[kind]
    amount = (quantity * unit_price).quantize(Decimal("0.000001"))
    return UsageLine(service=_SERVICES[kind], quantity=quantity, unit="msg" if kind < 3 else "min",
                     amount=amount, unit_price=unit_price, application=f"app-{number % 5}")


def sample_bill(line_count: int = 12, *, bill_no: str = "B-2026-11-000042") -> BillDocument:
    lines = tuple(usage_line(n) for n in range(1, line_count + 1))
    subtotal = sum((line.amount for line in lines), Decimal(0))
    tax = (subtotal * Decimal("0.09")).quantize(Decimal("0.000001"))
    return BillDocument(
        bill_no=bill_no, bill_date=date(2026, 12, 1), billing_cycle="2026-11",
        cycle_start=date(2026, 11, 1), cycle_end=date(2026, 11, 30), product="WhatsApp Business API",
        organization=CHINESE_NAME, application_id="app-7f3a", application_name=ARABIC_NAME,
        app_key="AK-9d8c7b6a", account_id="acme", currency="SGD", payer=PAYER, lines=lines,
        subtotal=subtotal, tax=tax, total=subtotal + tax, amount_paid=Decimal("10.00"),
        overdraft_amount=Decimal("1.205440"), payment_status="Partially paid",
        channel_account="WABA 104729385561",
    )


def sample_invoice(line_count: int = 8) -> InvoiceDocument:
    lines = tuple(
        InvoiceLine(product=f"Product {n % 3}", application=f"app-{n % 4}", app_key=f"AK-{n:04d}",
                    quantity=Decimal(n), unit="msg", amount=Decimal(n) * Decimal("0.010009"))
        for n in range(1, line_count + 1)
    )
    subtotal = sum((line.amount for line in lines), Decimal(0))
    tax = (subtotal * Decimal("0.09")).quantize(Decimal("0.000001"))
    payments = (InvoicePayment(paid_on=date(2026, 12, 5), reference="PAY-778", method="bank transfer",
                               amount=Decimal("0.10")),)
    return InvoiceDocument(
        number="INV-2026-0042", issue_date=date(2026, 12, 1), due_date=date(2026, 12, 31),
        period_start=date(2026, 11, 1), period_end=date(2026, 11, 30), account_id="acme", currency="SGD",
        payer=PAYER, lines=lines, subtotal=subtotal, tax_rate=Decimal("0.09"), tax=tax, total=subtotal + tax,
        payments=payments, amount_paid=Decimal("0.10"), outstanding=subtotal + tax - Decimal("0.10"),
        status="Partially paid", terms="Payment due within 30 days by bank transfer.",
        notes=f"Thank you, {CHINESE_NAME}.",
    )


def sample_receipt(kind: str = "recharge") -> ReceiptDocument:
    return ReceiptDocument(
        number="RCPT-2026-0007", kind=kind, received_at=datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc),
        account_id="acme", currency="SGD", amount=Decimal("1234.500001"), method="card",
        reference="PAY-1", payer=PAYER, applied_to=("INV-2026-0041",) if kind == "payment" else (),
    )


def balance_detail_rows(count: int) -> Iterator[BalanceDetailRow]:
    """``count`` movements, newest first like the ledger lists them; the balance follows."""
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    balance = Decimal("100000.000000")
    for n in range(count):
        amount = Decimal("500.00") if n % 50 == 0 else -(Decimal(1 + n % 89) * Decimal("0.010009"))
        balance += amount
        yield BalanceDetailRow(
            time=start + timedelta(seconds=count - n), transaction_no=f"acme:{count - n}",
            type="Recharge" if amount > 0 else "Expense", item="Recharge" if amount > 0 else "sms",
            application="" if amount > 0 else f"app-{n % 5}", amount=amount, balance_after=balance,
            currency="SGD",
        )


def bill_detail_rows(count: int) -> Iterator[BillDetailRow]:
    for n in range(count):
        line = usage_line(n + 1)
        yield BillDetailRow(
            billing_cycle="2026-11", product="WhatsApp Business API", channel_account="WABA 104729385561",
            app_key=f"AK-{n % 7:04d}", application_id=f"app-{n % 5}", application_name=CHINESE_NAME,
            service_usage=line.quantity, usage_unit=line.unit, consumption_amount=line.amount, currency="SGD",
            payment_status="Unpaid" if n % 3 else "Paid", overdraft_amount=Decimal("0.000001") * (n % 4),
        )


def invoice_report_rows(count: int) -> Iterator[InvoiceReportRow]:
    for n in range(count):
        total = Decimal(n + 1) * Decimal("10.090009")
        paid = Decimal(0) if n % 2 else total
        tax = (total * Decimal("0.09")).quantize(Decimal("0.000001"))
        yield InvoiceReportRow(
            number=f"INV-{n:05d}", account_id="acme", issue_date=date(2026, 1 + n % 12, 1),
            due_date=date(2026, 1 + n % 12, 28), period_start=date(2026, 1 + n % 12, 1),
            period_end=date(2026, 1 + n % 12, 28), currency="SGD", subtotal=total - tax, tax=tax, total=total,
            paid=paid, outstanding=total - paid, payment_status="Paid" if paid else "Unpaid",
            due_status="Not due" if paid else "Overdue",
        )
