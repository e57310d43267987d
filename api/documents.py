"""PDF documents (bills, invoices, receipts) and the bills and invoices exports.

The exports take the filters of their list endpoints (not the cursor or page size: an
export holds every matching row, up to exporters.limits.MAX_EXPORT_ROWS)."""

from __future__ import annotations

from io import BytesIO
from typing import Any

from flask import Response, send_file
from flask.views import MethodView
from marshmallow import RAISE

from api.accounts import Blueprint, service
from api.auth import allow, visible
from api.bills import BillQuerySchema, bill_filter, find_bill
from api.exports import csv_response, xlsx_response
from api.invoice_schemas import InvoiceQuerySchema
from api.invoices import find_invoice, invoice_filter
from exporters.columns import BILL_DETAIL_COLUMNS, INVOICE_REPORT_COLUMNS
from exporters.pdf import render_bill_pdf, render_invoice_pdf, render_receipt_pdf
from ledger_core.access import Role
from ledger_core.errors import TransactionNotFound
from service.documents import (
    account_days,
    account_zones,
    bill_detail_rows,
    bill_document,
    invoice_document,
    invoice_report_rows,
    issuer_of,
    receipt_document,
)
from service.exports import iter_invoices, safe_file_name

PDF_TYPE = "application/pdf"
blp = Blueprint("documents", __name__, description="PDF documents and exports of bills and invoices")


class BillExportQuerySchema(BillQuerySchema):
    class Meta:
        exclude = ("cursor", "limit", "sort")


class InvoiceExportQuerySchema(InvoiceQuerySchema):
    class Meta:
        exclude = ("cursor", "limit")


def _pdf(content: bytes, file_name: str) -> Response:
    return send_file(BytesIO(content), mimetype=PDF_TYPE, download_name=file_name)


@blp.route("/v1/bills/<bill_no>.pdf")
class BillPdf(MethodView):
    @allow(Role.FINANCE)
    @blp.response(200, description="The bill as PDF", content_type=PDF_TYPE)
    def get(self, bill_no: str) -> Response:
        """A bill: payer tax details, cycle, product, application, AppKey, usage lines, status, overdraft."""
        svc = service()
        find_bill(bill_no)
        document = bill_document(svc, bill_no)
        return _pdf(render_bill_pdf(document, issuer_of(svc.settings)), safe_file_name(bill_no, "pdf"))


@blp.route("/v1/invoices/<invoice_id>.pdf")
class InvoicePdf(MethodView):
    @allow(Role.FINANCE)
    @blp.response(200, description="The invoice as PDF", content_type=PDF_TYPE)
    def get(self, invoice_id: str) -> Response:
        """An invoice (by id or number) with its lines, tax, totals, payments, due date, terms and notes."""
        svc = service()
        find_invoice(invoice_id)
        document = invoice_document(svc, invoice_id)
        return _pdf(render_invoice_pdf(document, issuer_of(svc.settings)), safe_file_name(document.number, "pdf"))


@blp.route("/v1/receipts/<transaction_no>.pdf")
class ReceiptPdf(MethodView):
    @allow(Role.FINANCE)
    @blp.response(200, description="The receipt as PDF", content_type=PDF_TYPE)
    def get(self, transaction_no: str) -> Response:
        """A receipt for a recharge or a payment, by its transaction number."""
        svc = service()
        visible(svc.view.transaction(transaction_no),
                TransactionNotFound(f"no transaction {transaction_no!r}", transaction_no=transaction_no))
        document = receipt_document(svc, transaction_no)
        return _pdf(render_receipt_pdf(document, issuer_of(svc.settings)), safe_file_name(f"receipt-{transaction_no}", "pdf"))


def _bill_rows(query: dict[str, Any]) -> Any:
    return bill_detail_rows(service(), bill_filter(query))


@blp.route("/v1/bills/export.xlsx")
class BillsXlsx(MethodView):
    @allow(Role.FINANCE)
    @blp.arguments(BillExportQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, description="Bill details as an Excel workbook")
    def get(self, query: dict[str, Any]) -> Response:
        """Bill details (one row per application and AppKey of each bill), the list's filters."""
        return xlsx_response(BILL_DETAIL_COLUMNS, _bill_rows(query), "bills.xlsx", "Bill details")


@blp.route("/v1/bills/export.csv")
class BillsCsv(MethodView):
    @allow(Role.FINANCE)
    @blp.arguments(BillExportQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, description="Bill details as CSV")
    def get(self, query: dict[str, Any]) -> Response:
        """Bill details as .csv, streamed."""
        return csv_response(BILL_DETAIL_COLUMNS, _bill_rows(query), "bills.csv")


@blp.route("/v1/invoices/export.xlsx")
class InvoicesXlsx(MethodView):
    @allow(Role.FINANCE)
    @blp.arguments(InvoiceExportQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, description="Invoice report as an Excel workbook")
    def get(self, query: dict[str, Any]) -> Response:
        """Invoice report: number, account, dates, totals, tax, paid, outstanding, statuses."""
        svc = service()
        rows = invoice_report_rows(iter_invoices(svc, invoice_filter(query)), account_days(svc), account_zones(svc))
        return xlsx_response(INVOICE_REPORT_COLUMNS, rows, "invoices.xlsx", "Invoices")


@blp.route("/v1/invoices/export.csv")
class InvoicesCsv(MethodView):
    @allow(Role.FINANCE)
    @blp.arguments(InvoiceExportQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, description="Invoice report as CSV")
    def get(self, query: dict[str, Any]) -> Response:
        """Invoice report as .csv, streamed."""
        svc = service()
        rows = invoice_report_rows(iter_invoices(svc, invoice_filter(query)), account_days(svc), account_zones(svc))
        return csv_response(INVOICE_REPORT_COLUMNS, rows, "invoices.csv")
