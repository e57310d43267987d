"""Customers (search and filters over accounts, each with its five figures) and an
account's overview (figures, holds, spending per product per cycle, the next invoice)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from marshmallow import Schema

from console.access import caller, page, service, visible_account_ids
from console.queries import PAGE_ROWS, choice, read, text
from console.spending import spending
from ledger_core.access import Role
from ledger_core.figures import BillingMode, InvoiceMode
from projections.bills import BillFilter
from projections.rows import AccountFilter
from service.invoicing import future_invoice, predict_invoice

blp = Blueprint("accounts", __name__)
SPENDING_BILLS = 500  # the newest bills the chart reads: 12 cycles of up to 40 products


class CustomerQuery(Schema):
    q = text()
    billing_mode = choice(tuple(m.value for m in BillingMode))
    invoice_mode = choice(tuple(m.value for m in InvoiceMode))
    owes = choice(("yes",))
    overdraft = choice(("yes",))
    after = text(200)


@blp.route("/")
@page(Role.FINANCE, Role.AUDITOR)
def customers() -> Any:
    query, errors = read(CustomerQuery())
    after = None
    if "after" in query:
        opened, _, account_id = query["after"].partition("|")
        after = (opened, account_id) if account_id else None
    rows, next_after = service().view.find_accounts(AccountFilter(
        text=query.get("q"), billing_mode=query.get("billing_mode"), invoice_mode=query.get("invoice_mode"),
        has_amount_due=True if "owes" in query else None, in_overdraft=True if "overdraft" in query else None,
        accounts=visible_account_ids(), after=after), PAGE_ROWS)
    next_cursor = None if next_after is None else "|".join(next_after)
    return render_template("customers.html", rows=rows, query=query, errors=errors, next_cursor=next_cursor,
                           modes=(BillingMode, InvoiceMode)), 400 if errors else 200


@blp.route("/accounts/<account_id>")
@page(Role.FINANCE, Role.AUDITOR)
def overview(account_id: str) -> Any:
    svc = service()
    row = svc.account_row(account_id)
    bills, _ = svc.view.bills(BillFilter(account_id=account_id), SPENDING_BILLS)
    cycles, colours = spending(bills)
    who = caller()
    finance = who.role in (Role.FINANCE, Role.ADMIN)
    return render_template(
        "account.html", row=row, holds=svc.view.holds(account_id), cycles=cycles, colours=colours,
        future=future_invoice(svc, account_id) if finance else None,
        prediction=predict_invoice(svc, account_id) if finance else None)
