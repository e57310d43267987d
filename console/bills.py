"""Bills: the list with product, billing cycle and status filters, "Download bill" (PDF)
per row and "Export data" (Excel) of what the filters pick."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from marshmallow import Schema

from console.access import listed_account, page, service, visible
from console.downloads import pdf, xlsx
from console.queries import PAGE_ROWS, choice, cursor, read, read_export, text
from exporters.columns import BILL_DETAIL_COLUMNS
from exporters.pdf import render_bill_pdf
from ledger_core.access import Role
from ledger_core.cycles import Bound
from projections.bills import CLEARED, PENDING, BillFilter
from service.documents import bill_detail_rows, bill_document, issuer_of
from service.wire import DayOrTime

blp = Blueprint("bills", __name__)


class BillQuery(Schema):
    account_id = text(64)
    product = text()
    cycle = DayOrTime()
    status = choice((PENDING, CLEARED))
    before = cursor()


def bill_filter(query: dict[str, Any], account_id: str | None) -> BillFilter:
    cycle: Bound | None = query.get("cycle")
    if cycle is not None and cycle.moment is not None:
        cycle = Bound.of_days(f"{cycle.moment:%Y-%m}")  # a time names its month's cycle
    return BillFilter(account_id=account_id, product=query.get("product"), status=query.get("status"),
                      cycle_from=cycle, cycle_to=cycle, before_position=query.get("before"))


@blp.route("/bills")
@page(Role.FINANCE)
def bills() -> Any:
    query, errors = read(BillQuery())
    account_id = listed_account(query.get("account_id"))
    rows, next_position = service().view.bills(bill_filter(query, account_id), PAGE_ROWS)
    return render_template("bills.html", rows=rows, query=query, errors=errors, next_position=next_position,
                           statuses=(PENDING, CLEARED), account_id=account_id), 400 if errors else 200


@blp.route("/bills/export.xlsx")
@page(Role.FINANCE)
def export() -> Any:
    query = read_export(BillQuery())
    rows = bill_detail_rows(service(), bill_filter(query, listed_account(query.get("account_id"))))
    return xlsx(BILL_DETAIL_COLUMNS, rows, "bills", "Bill details")


@blp.route("/bills/<bill_no>.pdf")
@page(Role.FINANCE)
def bill_pdf(bill_no: str) -> Any:
    svc = service()
    visible(svc.view.bill(bill_no))
    return pdf(render_bill_pdf(bill_document(svc, bill_no), issuer_of(svc.settings)), bill_no)
