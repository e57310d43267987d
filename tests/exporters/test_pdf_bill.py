"""The bill PDF, read back with pypdf: every field, page breaks, repeated headers, names."""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import replace
from decimal import Decimal

import pytest
from pypdf import PdfReader

from exporters.display import display_money
from exporters.documents import InconsistentDocument
from exporters.pdf import layout as L
from exporters.pdf import render_bill_pdf
from tests.exporters.conftest import pdf_pages
from tests.exporters.samples import ARABIC_NAME, CHINESE_NAME, ISSUER, TURKISH_NAME, sample_bill

TABLE_HEADER = "# Service usage Application Quantity Unit Unit price Amount"
ROW = re.compile(r"^(\d+) (WhatsApp|SMS|Voice)")


def test_the_first_page_carries_every_field_of_the_bill():
    bill = sample_bill(12)
    lines = pdf_pages(render_bill_pdf(bill, ISSUER))[0]
    expected = [
        ISSUER.name, "1 Marina Boulevard #28-00", "Tax ID: GST 201912345K", "BILL", "BILL TO",
        TURKISH_NAME, CHINESE_NAME, "Tax ID: TR-1234567890", "Büyükdere Cd. No:185", "34394 Şişli/İstanbul",
        "finans@unal.test",
        "Bill no. B-2026-11-000042", "Bill date 2026-12-01", "Billing cycle 2026-11 (2026-11-01 – 2026-11-30)",
        "Product WhatsApp Business API", f"Organization {CHINESE_NAME}", "Channel account WABA 104729385561",
        "Application ID app-7f3a", "AppKey AK-9d8c7b6a", "Account acme (SGD)", "Payment status Partially paid",
        TABLE_HEADER,
        # line 2: 3 x 0.000009 = 0.000027, shown with all its places (never as 0.00)
        "2 SMS to +90 app-2 3 msg 0.000009 0.000027",
        "3 Voice minutes (outbound) app-3 4 min 0.0123456 0.049382",
        "12 WhatsApp marketing conversation app-2 13 msg 0.0109 0.1417",
        # the sum of the 12 line amounts worked out by hand: 0.666383; tax 9% of it rounded: 0.059974
        "Subtotal 0.666383 SGD", "Tax 0.059974 SGD", "Total 0.726357 SGD", "Amount paid 10.00 SGD",
        "Overdraft amount 1.20544 SGD", "Payment status Partially paid",
        f"{ISSUER.name} · Bill B-2026-11-000042 Page 1 of 1",
    ]
    for line in expected:
        assert line in lines, f"{line!r} missing from {lines}"
    assert bill.subtotal == Decimal("0.666383") and bill.total == Decimal("0.726357")


def test_totals_print_the_stored_values():
    # Stored total 0.726357: the display keeps every place, so nothing is lost or re-added.
    bill = sample_bill(12)
    text = "\n".join(pdf_pages(render_bill_pdf(bill, ISSUER))[-1])
    assert f"Total {display_money(bill.total, 'SGD')}" in text
    assert display_money(Decimal("1234567.5"), "SGD") == "1,234,567.50 SGD"
    assert display_money(Decimal("5"), "JPY") == "5 JPY"


def test_a_bill_whose_totals_disagree_with_its_lines_is_refused():
    bill = sample_bill(3)
    with pytest.raises(InconsistentDocument, match="subtotal"):
        replace(bill, subtotal=bill.subtotal + Decimal("0.000001"))
    with pytest.raises(InconsistentDocument, match="total"):
        replace(bill, total=bill.total - Decimal("0.01"))


def test_the_layout_fits_31_rows_on_the_first_page_and_45_on_the_next():
    # Worked out by hand from the geometry, so a layout change shows here first:
    # first page: table header at 12 + 34 + (11 x 4.3 + 4) + 4 = 101.3 mm, rows end by 280 mm:
    # (280 - 101.3 - 7) / 5.5 = 31.2 -> 31 rows; next pages: (280 - 22 - 7) / 5.5 = 45.6 -> 45.
    assert L.FIRST_PAGE_TABLE_TOP == pytest.approx(101.3)
    assert L.CONTENT_BOTTOM == 280
    assert L.rows_that_fit(L.FIRST_PAGE_TABLE_TOP) == 31
    assert L.rows_that_fit(L.NEXT_PAGE_TABLE_TOP) == 45


def test_a_1500_line_bill_breaks_into_34_pages_each_with_the_table_header():
    # 31 rows on page 1, then ceil((1500 - 31) / 45) = 33 pages of 45 (the last holds 29
    # rows and leaves room for the 40 mm of totals): 34 pages.
    bill = sample_bill(1500)
    pages = pdf_pages(render_bill_pdf(bill, ISSUER))
    assert len(pages) == 34
    numbers_by_page = [[int(m.group(1)) for line in page if (m := ROW.match(line))] for page in pages]
    assert numbers_by_page[0] == list(range(1, 32))
    for index, numbers in enumerate(numbers_by_page[1:-1], start=1):
        first = 32 + (index - 1) * 45
        assert numbers == list(range(first, first + 45)), f"page {index + 1}"
    assert numbers_by_page[-1] == list(range(1472, 1501))
    for index, page in enumerate(pages, start=1):
        assert page.count(TABLE_HEADER) == 1, f"page {index} has no table header"
        assert page[-1].endswith(f"Page {index} of 34")
        if index > 1:
            assert page[0] == f"{ISSUER.name} Bill B-2026-11-000042 (continued)"
    assert f"Total {display_money(bill.total, 'SGD')}" in pages[-1]
    assert not any(line.startswith("Total ") for page in pages[:-1] for line in page)


def test_totals_that_do_not_fit_under_the_last_row_move_to_a_new_page():
    # 31 + 45 = 76 rows fill two pages exactly: the totals need a third.
    pages = pdf_pages(render_bill_pdf(sample_bill(76), ISSUER))
    assert len(pages) == 3
    assert TABLE_HEADER not in pages[2]
    assert any(line.startswith("Total ") for line in pages[2])


def test_chinese_and_turkish_names_come_back_intact():
    text = "\n".join(pdf_pages(render_bill_pdf(sample_bill(3), ISSUER))[0])
    assert CHINESE_NAME in text
    assert TURKISH_NAME in text  # Ş, Ü, Ğ, İ: Latin Extended-A, from Noto Sans itself


def test_an_arabic_name_comes_back_word_for_word_in_visual_order():
    # What is asserted, honestly: the text is shaped (joined letter forms) and drawn right
    # to left; pypdf gives it back in visual order: each word's letters come out in logical
    # order (the ToUnicode map of the shaped glyphs), the words themselves right to left.
    # After NFKC (which would fold any presentation forms back to letters) the line is the
    # name's words, reversed.
    lines = [unicodedata.normalize("NFKC", line) for line in pdf_pages(render_bill_pdf(sample_bill(3), ISSUER))[0]]
    visual = " ".join(reversed(ARABIC_NAME.split()))
    assert visual in lines  # the address line
    assert f"Application {visual}" in lines


def test_the_shipped_fonts_are_embedded_as_subsets():
    reader = PdfReader(io.BytesIO(render_bill_pdf(sample_bill(3), ISSUER)))
    base_fonts = [str(font["/BaseFont"]) for font in reader.pages[0]["/Resources"]["/Font"].values()]
    assert all(re.match(r"^/[A-Z]{6}\+", name) for name in base_fonts), base_fonts  # subset tags
    fonts = {str(font["/BaseFont"]).split("+")[-1] for font in reader.pages[0]["/Resources"]["/Font"].values()
             if "/BaseFont" in font.get_object()}
    assert {"NotoSans", "NotoSansBold", "NotoSansArabic", "DroidSansFallback"} <= fonts, fonts


def test_an_empty_bill_still_has_its_table_header_and_totals():
    bill = replace(sample_bill(0), amount_paid=Decimal(0))
    lines = pdf_pages(render_bill_pdf(bill, ISSUER))[0]
    assert TABLE_HEADER in lines
    assert "Total 0.00 SGD" in lines
