"""The invoice PDF: lines, tax, totals, payments applied, due date, terms and notes."""

from __future__ import annotations

from exporters.display import display_amount, display_date, display_money, display_quantity, display_rate
from exporters.documents import InvoiceDocument, InvoiceLine, Issuer
from exporters.pdf import layout as L
from exporters.pdf.canvas import MUTED, DocumentPDF
from exporters.pdf.table import LineTable, TableColumn, totals_block

INVOICE_COLUMNS = (
    TableColumn("#", 0.06, "R"),
    TableColumn("Product", 0.24),
    TableColumn("Application", 0.16),
    TableColumn("AppKey", 0.15),
    TableColumn("Quantity", 0.13, "R"),
    TableColumn("Unit", 0.10),
    TableColumn("Amount", 0.16, "R"),
)
PAYMENT_COLUMNS = (
    TableColumn("Date", 0.2),
    TableColumn("Reference", 0.3),
    TableColumn("Method", 0.25),
    TableColumn("Amount", 0.25, "R"),
)
TEXT_LINE_HEIGHT = 4.2


def render_invoice_pdf(invoice: InvoiceDocument, issuer: Issuer) -> bytes:
    pdf = DocumentPDF(issuer, "Invoice", invoice.number)
    pdf.add_page()
    _top_blocks(pdf, invoice)
    pdf.set_y(L.FIRST_PAGE_TABLE_TOP)
    currency = invoice.currency
    LineTable(pdf, INVOICE_COLUMNS).draw(
        _line_cells(number, line, currency) for number, line in enumerate(invoice.lines, start=1)
    )
    # The stored figures of the invoice, never a sum of the printed lines.
    totals_block(pdf, [
        ("Subtotal", display_money(invoice.subtotal, currency), False),
        (f"Tax ({display_rate(invoice.tax_rate)})", display_money(invoice.tax, currency), False),
        ("Total", display_money(invoice.total, currency), True),
        ("Amount paid", display_money(invoice.amount_paid, currency), False),
        ("Outstanding", display_money(invoice.outstanding, currency), True),
    ])
    if invoice.payments:
        pdf.ensure_room(7 + L.TABLE_HEADER_HEIGHT + L.ROW_HEIGHT * 2)
        pdf.section_title("Payments")
        LineTable(pdf, PAYMENT_COLUMNS).draw(
            (display_date(p.paid_on), p.reference, p.method, display_amount(p.amount, currency))
            for p in invoice.payments
        )
    _text_section(pdf, "Terms", invoice.terms)
    _text_section(pdf, "Notes", invoice.notes)
    return bytes(pdf.output())


def _top_blocks(pdf: DocumentPDF, invoice: InvoiceDocument) -> None:
    top = L.TOP_MARGIN + L.ISSUER_HEADER_HEIGHT
    half = L.CONTENT_WIDTH / 2
    pdf.party_block(L.MARGIN_X, top, half - 6, "Bill to", invoice.payer)
    pdf.details_block(L.MARGIN_X + half, top, half, [
        ("Invoice no.", invoice.number),
        ("Issue date", display_date(invoice.issue_date)),
        ("Due date", display_date(invoice.due_date)),
        ("Period", f"{display_date(invoice.period_start)} – {display_date(invoice.period_end)}"),
        ("Account", invoice.account_id),
        ("Currency", invoice.currency),
        ("Status", invoice.status or "—"),
        ("Amount due", display_money(invoice.outstanding, invoice.currency)),
    ])


def _line_cells(number: int, line: InvoiceLine, currency: str) -> tuple[str, ...]:
    product = f"{line.product} · {line.description}" if line.description else line.product
    return (str(number), product, line.application, line.app_key, display_quantity(line.quantity), line.unit,
            display_amount(line.amount, currency))


def _text_section(pdf: DocumentPDF, title: str, text: str) -> None:
    if not text:
        return
    pdf.ensure_room(7 + TEXT_LINE_HEIGHT * 3)
    pdf.ln(2)
    pdf.section_title(title)
    pdf.set_text_color(*MUTED)
    pdf.set_font(size=L.BODY_FONT_SIZE)
    pdf.set_x(L.MARGIN_X)
    # Terms may run over lines: multi_cell wraps them; the text is capped in the document type.
    pdf.set_auto_page_break(True, margin=L.PAGE_HEIGHT - L.CONTENT_BOTTOM)
    pdf.multi_cell(L.CONTENT_WIDTH, TEXT_LINE_HEIGHT, text)
    pdf.set_auto_page_break(False)
