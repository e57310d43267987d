"""Invoice and receipt PDFs, read back with pypdf."""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal

import pytest

from exporters.documents import InconsistentDocument
from exporters.pdf import render_invoice_pdf, render_receipt_pdf
from tests.exporters.conftest import pdf_pages
from tests.exporters.samples import CHINESE_NAME, ISSUER, TURKISH_NAME, sample_invoice, sample_receipt

LINE = re.compile(r"^(\d+) Product \d app-")


def test_the_invoice_carries_lines_tax_totals_payments_due_date_terms_and_notes():
    invoice = sample_invoice(8)
    # by hand: lines n x 0.010009 for n = 1..8 -> 36 x 0.010009 = 0.360324; 9% tax 0.03242916 -> 0.032429
    assert invoice.subtotal == Decimal("0.360324") and invoice.tax == Decimal("0.032429")
    lines = pdf_pages(render_invoice_pdf(invoice, ISSUER))[0]
    expected = [
        "INVOICE", "BILL TO", TURKISH_NAME, CHINESE_NAME, "Tax ID: TR-1234567890",
        "Invoice no. INV-2026-0042", "Issue date 2026-12-01", "Due date 2026-12-31",
        "Period 2026-11-01 – 2026-11-30", "Account acme", "Currency SGD", "Status Partially paid",
        "Amount due 0.292753 SGD",
        "# Product Application AppKey Quantity Unit Amount",
        "1 Product 1 app-1 AK-0001 1 msg 0.010009",
        "8 Product 2 app-0 AK-0008 8 msg 0.080072",
        "Subtotal 0.360324 SGD", "Tax (9%) 0.032429 SGD", "Total 0.392753 SGD", "Amount paid 0.10 SGD",
        "Outstanding 0.292753 SGD",
        "Payments", "Date Reference Method Amount", "2026-12-05 PAY-778 bank transfer 0.10",
        "Terms", "Payment due within 30 days by bank transfer.", "Notes", f"Thank you, {CHINESE_NAME}.",
    ]
    for line in expected:
        assert line in lines, f"{line!r} missing from {lines}"


def test_an_invoice_whose_outstanding_disagrees_with_its_payments_is_refused():
    invoice = sample_invoice(2)
    with pytest.raises(InconsistentDocument, match="outstanding"):
        replace(invoice, outstanding=invoice.total)
    with pytest.raises(InconsistentDocument, match="amount paid"):
        replace(invoice, payments=())


def test_a_long_invoice_repeats_its_table_header_on_every_page():
    pages = pdf_pages(render_invoice_pdf(sample_invoice(200), ISSUER))
    numbers = [[int(m.group(1)) for line in page if (m := LINE.match(line))] for page in pages]
    assert [n for page in numbers for n in page] == list(range(1, 201))  # every line once, in order
    # 31 + 45 + 45 + 45 = 166 lines on 4 pages, 34 more on the 5th with the totals and the
    # payments; the terms and notes no longer fit under them and start page 6.
    assert [len(page) for page in numbers] == [31, 45, 45, 45, 34, 0]
    assert pages[5][1:3] == ["Terms", "Payment due within 30 days by bank transfer."]
    for index, page in enumerate(pages[:5], start=1):
        assert "# Product Application AppKey Quantity Unit Amount" in page, f"page {index}"
    for index, page in enumerate(pages, start=1):
        assert page[-1].endswith(f"Page {index} of 6")


@pytest.mark.parametrize("kind, title", [("recharge", "Recharge (top-up)"), ("payment", "Payment")])
def test_the_receipt_names_the_money_received(kind, title):
    lines = pdf_pages(render_receipt_pdf(sample_receipt(kind), ISSUER))[0]
    expected = [
        "RECEIPT", "RECEIVED FROM", TURKISH_NAME, CHINESE_NAME, "Receipt no. RCPT-2026-0007",
        "Date 2026-11-26 09:30:00 UTC", f"For {title}", "Account acme", "Method card", "Reference PAY-1",
        "Amount received", "1,234.500001 SGD",
    ]
    for line in expected:
        assert line in lines, f"{line!r} missing from {lines}"
    assert ("Applied to invoices: INV-2026-0041" in lines) == (kind == "payment")


def test_a_receipt_is_for_a_positive_amount():
    with pytest.raises(InconsistentDocument):
        replace(sample_receipt(), amount=Decimal(0))
