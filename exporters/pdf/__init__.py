"""PDF documents (fpdf2): bills, invoices and receipts from the plain types of
``exporters.documents``. Each renderer returns the PDF's bytes."""

from exporters.pdf.bill import render_bill_pdf
from exporters.pdf.invoice import render_invoice_pdf
from exporters.pdf.receipt import render_receipt_pdf

__all__ = ["render_bill_pdf", "render_invoice_pdf", "render_receipt_pdf"]
