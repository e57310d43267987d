"""The bill PDF: one account's usage of one product in one billing cycle."""

from __future__ import annotations

from exporters.display import display_amount, display_date, display_money, display_quantity
from exporters.documents import BillDocument, Issuer, UsageLine
from exporters.pdf import layout as L
from exporters.pdf.canvas import DocumentPDF
from exporters.pdf.table import LineTable, TableColumn, totals_block

BILL_COLUMNS = (
    TableColumn("#", 0.05, "R"),
    TableColumn("Service usage", 0.28),
    TableColumn("Application", 0.24),  # application / AppKey
    TableColumn("Quantity", 0.09, "R"),
    TableColumn("Unit", 0.11),
    TableColumn("Unit price", 0.10, "R"),
    TableColumn("Amount", 0.13, "R"),
)
BILL_TOTAL_ROWS = 6  # subtotal, tax, total, paid, overdraft, payment status


def render_bill_pdf(bill: BillDocument, issuer: Issuer) -> bytes:
    pdf = DocumentPDF(issuer, "Bill", bill.bill_no)
    pdf.add_page()
    _top_blocks(pdf, bill)
    pdf.set_y(L.FIRST_PAGE_TABLE_TOP)
    currency = bill.currency
    LineTable(pdf, BILL_COLUMNS).draw(
        _line_cells(number, line, currency) for number, line in enumerate(bill.lines, start=1)
    )
    # Totals are the stored figures of the bill, never a sum of the printed lines.
    totals_block(pdf, [
        ("Subtotal", display_money(bill.subtotal, currency), False),
        ("Tax", display_money(bill.tax, currency), False),
        ("Total", display_money(bill.total, currency), True),
        ("Amount paid", display_money(bill.amount_paid, currency), False),
        ("Overdraft amount", display_money(bill.overdraft_amount, currency), False),
        ("Payment status", bill.payment_status, True),
    ])
    return bytes(pdf.output())


def _top_blocks(pdf: DocumentPDF, bill: BillDocument) -> None:
    top = L.TOP_MARGIN + L.ISSUER_HEADER_HEIGHT
    half = L.CONTENT_WIDTH / 2
    pdf.party_block(L.MARGIN_X, top, half - 6, "Bill to", bill.payer)
    pdf.details_block(L.MARGIN_X + half, top, half, [
        ("Bill no.", bill.bill_no),
        ("Bill date", display_date(bill.bill_date)),
        ("Billing cycle", f"{bill.billing_cycle} ({display_date(bill.cycle_start)} – {display_date(bill.cycle_end)})"),
        ("Product", bill.product),
        ("Organization", bill.organization),
        ("Channel account", bill.channel_account or "—"),
        ("Application", bill.application_name),
        ("Application ID", bill.application_id),
        ("AppKey", bill.app_key),
        ("Account", f"{bill.account_id} ({bill.currency})"),
        ("Payment status", bill.payment_status),
    ])


def _line_cells(number: int, line: UsageLine, currency: str) -> tuple[str, ...]:
    return (
        str(number),
        line.service,
        line.application,
        display_quantity(line.quantity),
        line.unit,
        "" if line.unit_price is None else f"{line.unit_price:,f}",
        display_amount(line.amount, currency),
    )
