"""Balance details: search (item, type, transaction number), filters (dates, type, item,
application), refresh, export (Excel), and a receipt per recharge or payment row."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template
from marshmallow import Schema

from console.access import page, service, visible
from console.downloads import pdf, xlsx
from console.queries import PAGE_ROWS, choice, cursor, read, read_export, text
from exporters.columns import BALANCE_DETAIL_COLUMNS
from exporters.pdf import render_receipt_pdf
from ledger_core.access import Role
from projections.rows import MovementType, TransactionFilter
from service.documents import balance_detail_rows, issuer_of, receipt_document
from service.exports import iter_transactions
from service.wire import DayOrTime

blp = Blueprint("transactions", __name__)
RECEIPTED = (MovementType.RECHARGE, MovementType.PAYMENT)


class TransactionQuery(Schema):
    q = text()
    type = choice(tuple(t.value for t in MovementType))
    item = text()
    application = text()
    date_from = DayOrTime()
    date_to = DayOrTime()
    before = cursor()


def transaction_filter(account_id: str, query: dict[str, Any]) -> TransactionFilter:
    zone = service().account_row(account_id).time_zone  # a day or a month means the account's local days
    return TransactionFilter(
        account_id=account_id, type=query.get("type"), product=query.get("item"),
        application_id=query.get("application"), text=query.get("q"),
        booked_from=query["date_from"].start(zone) if "date_from" in query else None,
        booked_to=query["date_to"].end(zone) if "date_to" in query else None,
        before_position=query.get("before"))


@blp.route("/accounts/<account_id>/transactions")
@page(Role.FINANCE, Role.AUDITOR)
def balance_details(account_id: str) -> Any:
    row = service().account_row(account_id)
    query, errors = read(TransactionQuery())
    found = service().view.transactions(transaction_filter(account_id, query), limit=PAGE_ROWS)
    return render_template("transactions.html", row=row, page=found, query=query, errors=errors,
                           types=MovementType, receipted=RECEIPTED), 400 if errors else 200


@blp.route("/accounts/<account_id>/transactions/export.xlsx")
@page(Role.FINANCE, Role.AUDITOR)
def export(account_id: str) -> Any:
    row = service().account_row(account_id)
    query = read_export(TransactionQuery())
    rows = balance_detail_rows(iter_transactions(service(), transaction_filter(account_id, query)), row.currency)
    return xlsx(BALANCE_DETAIL_COLUMNS, rows, f"{account_id}-transactions", "Balance details")


@blp.route("/receipts/<transaction_no>.pdf")
@page(Role.FINANCE)
def receipt(transaction_no: str) -> Any:
    svc = service()
    if visible(svc.view.transaction(transaction_no)).type not in RECEIPTED:
        abort(404)
    return pdf(render_receipt_pdf(receipt_document(svc, transaction_no), issuer_of(svc.settings)),
               f"receipt-{transaction_no}")
