"""The receipt PDF: money received, as a recharge (top-up) or a payment of invoices."""

from __future__ import annotations

from exporters.display import display_money, display_time
from exporters.documents import Issuer, ReceiptDocument
from exporters.pdf import layout as L
from exporters.pdf.canvas import ACCENT, MUTED, DocumentPDF

_KIND_TITLES = {"recharge": "Recharge (top-up)", "payment": "Payment", "order": "Order"}


def render_receipt_pdf(receipt: ReceiptDocument, issuer: Issuer) -> bytes:
    pdf = DocumentPDF(issuer, "Receipt", receipt.number)
    pdf.add_page()
    top = L.TOP_MARGIN + L.ISSUER_HEADER_HEIGHT
    half = L.CONTENT_WIDTH / 2
    pdf.party_block(L.MARGIN_X, top, half - 6, "Received from", receipt.payer)
    pdf.details_block(L.MARGIN_X + half, top, half, [
        ("Receipt no.", receipt.number),
        ("Date", display_time(receipt.received_at)),
        ("For", _KIND_TITLES[receipt.kind]),
        ("Account", receipt.account_id),
        ("Method", receipt.method),
        ("Reference", receipt.reference or "—"),
    ])
    _amount_box(pdf, receipt)
    if receipt.applied_to:
        pdf.set_xy(L.MARGIN_X, pdf.get_y() + 4)
        pdf.text_cell(L.CONTENT_WIDTH, 5, "Applied to invoices: " + ", ".join(receipt.applied_to))
    if receipt.item:
        pdf.set_xy(L.MARGIN_X, pdf.get_y() + 4)
        pdf.text_cell(L.CONTENT_WIDTH, 5, "Item: " + receipt.item)
    return bytes(pdf.output())


def _amount_box(pdf: DocumentPDF, receipt: ReceiptDocument) -> None:
    y = L.FIRST_PAGE_TABLE_TOP
    pdf.set_draw_color(*ACCENT)
    pdf.set_line_width(0.4)
    pdf.rect(L.MARGIN_X, y, L.CONTENT_WIDTH, 22)
    pdf.set_line_width(0.2)
    pdf.set_xy(L.MARGIN_X + 4, y + 3)
    pdf.text_cell(L.CONTENT_WIDTH - 8, 6, "Amount received", size=9, color=MUTED)
    pdf.set_xy(L.MARGIN_X + 4, y + 10)
    pdf.text_cell(L.CONTENT_WIDTH - 8, 9, display_money(receipt.amount, receipt.currency), size=18, bold=True,
                  color=ACCENT)
    pdf.set_y(y + 22)
