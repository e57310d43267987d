"""Exports of what the list endpoints show: an account's balance details as .xlsx or .csv.

Both take the filters of GET /v1/accounts/{id}/transactions (not its cursor or page size:
an export holds every matching row, up to exporters.limits.MAX_EXPORT_ROWS). Rows are read
page by page; the workbook is built in a temporary file (a zip is only valid once closed),
the CSV is streamed as it is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from flask import Response, send_file, stream_with_context
from flask.views import MethodView
from marshmallow import RAISE

from api.accounts import Blueprint, service, transaction_filter
from api.auth import allow
from api.schemas import TransactionQuerySchema
from exporters.columns import BALANCE_DETAIL_COLUMNS, Column
from exporters.csv_export import csv_chunks
from exporters.limits import MAX_EXPORT_ROWS
from ledger_core.access import Role
from service.documents import balance_detail_rows
from service.exports import XLSX_TYPE, iter_transactions, safe_file_name, xlsx_file

# The most rows one export holds (a module setting so tests can lower it).
MAX_ROWS = MAX_EXPORT_ROWS
CSV_TYPE = "text/csv"

blp = Blueprint("exports", __name__, url_prefix="/v1/accounts", description="Exports (Excel, CSV)")


class TransactionExportQuerySchema(TransactionQuerySchema):
    """The list's filters; its cursor and page size mean nothing here and, like any other
    unknown parameter, are refused (400) rather than silently ignored."""

    class Meta:
        exclude = ("cursor", "limit")


@blp.route("/<account_id>/transactions/export.xlsx")
class TransactionsXlsx(MethodView):
    @allow(Role.FINANCE, Role.AUDITOR)
    @blp.arguments(TransactionExportQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, description="The balance details as an Excel workbook", content_type=XLSX_TYPE)
    def get(self, query: dict[str, Any], account_id: str) -> Response:
        """Balance details as .xlsx: the list's filters, every matching row, newest first."""
        svc = service()
        currency = svc.account_row(account_id).currency
        rows = balance_detail_rows(iter_transactions(svc, transaction_filter(account_id, query)), currency)
        return xlsx_response(BALANCE_DETAIL_COLUMNS, rows, safe_file_name(f"{account_id}-transactions", "xlsx"), "Balance details")


@blp.route("/<account_id>/transactions/export.csv")
class TransactionsCsv(MethodView):
    @allow(Role.FINANCE, Role.AUDITOR)
    @blp.arguments(TransactionExportQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, description="The balance details as CSV (UTF-8)", content_type=CSV_TYPE)
    def get(self, query: dict[str, Any], account_id: str) -> Response:
        """Balance details as .csv, streamed: the list's filters, every matching row, newest first."""
        svc = service()
        currency = svc.account_row(account_id).currency  # a missing account is a 404, not a broken stream
        rows = balance_detail_rows(iter_transactions(svc, transaction_filter(account_id, query)), currency)
        return csv_response(BALANCE_DETAIL_COLUMNS, rows, safe_file_name(f"{account_id}-transactions", "csv"))


def xlsx_response(columns: Sequence[Column[Any]], rows: Iterable[Any], file_name: str, sheet_title: str) -> Response:
    """An .xlsx download of ``rows`` (service/exports.py xlsx_file)."""
    workbook = xlsx_file(columns, rows, sheet_title, max_rows=MAX_ROWS)
    return send_file(workbook, mimetype=XLSX_TYPE, as_attachment=True, download_name=file_name)


def csv_response(columns: Sequence[Column[Any]], rows: Iterable[Any], file_name: str) -> Response:
    """A .csv download streamed as ``rows`` are read. Check what can fail early (the
    account exists, say) before calling: once streaming, an error can only cut it short."""
    response = Response(stream_with_context(csv_chunks(columns, rows, max_rows=MAX_ROWS)),
                        content_type=f"{CSV_TYPE}; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{file_name}"'
    return response

