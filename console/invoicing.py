"""The invoicing dashboard and manage invoices: the totals per currency; an advanced search
(user, invoice, due status, payment status); per invoice, approve a draft, claim a payment,
download it, send a reminder; reminders in bulk for what the search picks; the report as
Excel.

Every form carries a key made when the page was drawn, used as the write's idempotency key
(or payment id): sending the same form twice (a double click, a reload) lands once.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from marshmallow import Schema

from console.access import back_to, caller, listed_account, may, page, service, visible
from console.downloads import pdf, xlsx
from console.forms import form_errors, form_key
from console.queries import PAGE_ROWS, choice, cursor, read, read_export, text
from exporters.columns import INVOICE_REPORT_COLUMNS
from exporters.pdf import render_invoice_pdf
from ledger_core import commands
from ledger_core.access import Role
from ledger_core.errors import LedgerError
from ledger_core.invoicing import DueStatus, InvoiceStatus, PaymentStatus
from projections.rows import InvoiceFilter, InvoiceRow
from service.documents import (
    account_days,
    account_zones,
    invoice_document,
    invoice_due_status,
    invoice_report_rows,
    issuer_of,
)
from service.exports import iter_invoices
from service.invoicing import invoice_dashboard
from service.reminders import REMINDABLE, ReminderFilter, queue_reminders

blp = Blueprint("invoicing", __name__)


class InvoiceQuery(Schema):
    account_id = text(64)
    number = text(64)
    status = choice(tuple(s.value for s in InvoiceStatus))
    payment_status = choice(tuple(s.value for s in PaymentStatus))
    due_status = choice(tuple(s.value for s in DueStatus))
    before = cursor()


def invoice_filter(query: dict[str, Any]) -> InvoiceFilter:
    account_id = listed_account(query.get("account_id"))
    today = service().now_for(account_id).date()
    return InvoiceFilter(account_id=account_id, number=query.get("number"), status=query.get("status"),
                         payment_status=query.get("payment_status"), due_status=query.get("due_status"),
                         today=today.isoformat(), before_position=query.get("before"))


def find_invoice(invoice_id: str) -> InvoiceRow:
    return visible(service().view.invoice(invoice_id))


@blp.route("/invoices")
@page(Role.FINANCE)
def invoices() -> Any:
    query, errors = read(InvoiceQuery())
    search = invoice_filter(query)
    svc = service()
    rows, next_position = svc.view.invoices(search, PAGE_ROWS)
    today_of = account_days(svc)
    due = {r.invoice_id: invoice_due_status(r, today_of(r.account_id)) for r in rows}
    return render_template(
        "invoices.html", rows=rows, due=due, query=query, errors=errors, next_position=next_position,
        dashboard=invoice_dashboard(svc, replace(search, before_position=None, status=None, payment_status=None)),
        statuses=InvoiceStatus, payment_statuses=PaymentStatus, due_statuses=DueStatus, form_key=form_key(),
        writes=may(Role.FINANCE), reminds=may(Role.FINANCE) and not caller().scoped), 400 if errors else 200


@blp.route("/invoices/<invoice_id>/approve", methods=["POST"])
@page(Role.FINANCE)
def approve(invoice_id: str) -> Any:
    row = find_invoice(invoice_id)
    try:
        service().handle(commands.ApproveInvoice(row.invoice_id))
        flash(f"Invoice {row.invoice_id} approved.")
    except LedgerError as error:
        flash(error.message, "error")
    return redirect(back_to(request.form.get("back", "")) or url_for("invoicing.invoices"))


@blp.route("/invoices/<invoice_id>/remind", methods=["POST"])
@page(Role.FINANCE)
def remind(invoice_id: str) -> Any:
    row = find_invoice(invoice_id)
    return _queue(ReminderFilter(account_id=row.account_id, number=row.number))


@blp.route("/invoices/reminders", methods=["POST"])
@page(Role.FINANCE)
def remind_all() -> Any:
    """Reminders for every unpaid or partially paid invoice the search picks."""
    picked = invoice_filter({k: v for k, v in request.form.items() if k in ("account_id", "number") and v})
    due = request.form.get("due_status") or None
    payment = request.form.get("payment_status") or None
    return _queue(ReminderFilter(account_id=picked.account_id, number=picked.number, due_status=due,
                                 payment_status=payment if payment in REMINDABLE else None))


def _queue(filters: ReminderFilter) -> Any:
    if caller().scoped:
        abort(403)  # as in the API: reminders are sent by a login that sees every account
    try:
        queued = queue_reminders(service(), filters, request.form.get("form_key") or form_key())
        flash(f"{queued.queued} reminder(s) queued for sending"
              + (f"; {queued.already_queued} were queued already" if queued.already_queued else "")
              + (f"; {queued.skipped_no_email} invoice(s) have no e-mail address" if queued.skipped_no_email else ""))
    except LedgerError as error:
        flash(error.message, "error")
    return redirect(back_to(request.form.get("back", "")) or url_for("invoicing.invoices"))


@blp.route("/invoices/<invoice_id>/claim", methods=["GET", "POST"])
@page(Role.FINANCE)
def claim(invoice_id: str) -> Any:
    """Claim a payment against the invoice: the whole outstanding amount, or part of it."""
    row = find_invoice(invoice_id)
    errors: dict[str, str] = {}
    if request.method == "POST":
        fields = request.form
        try:
            service().handle(commands.RecordPayment(
                row.account_id, payment_id=fields.get("form_key", ""), amount=fields.get("amount", "").strip(),
                invoice_id=row.invoice_id, method=fields.get("method", "").strip(),
                reference=fields.get("reference", "").strip()))
            flash(f"Payment of {fields.get('amount')} {row.currency} claimed against {row.number or row.invoice_id}.")
            return redirect(url_for("invoicing.invoices", account_id=row.account_id))
        except LedgerError as error:
            errors = form_errors(error, ("amount", "method", "reference"))
    return render_template("claim.html", row=row, errors=errors, form_key=request.form.get("form_key") or form_key(),
                           outstanding=row.outstanding if row.outstanding > 0 else Decimal(0)), 422 if errors else 200


@blp.route("/invoices/<invoice_id>.pdf")
@page(Role.FINANCE)
def invoice_pdf(invoice_id: str) -> Any:
    row = find_invoice(invoice_id)
    svc = service()
    document = invoice_document(svc, row.invoice_id)
    return pdf(render_invoice_pdf(document, issuer_of(svc.settings)), document.number or row.invoice_id)


@blp.route("/invoices/export.xlsx")
@page(Role.FINANCE)
def export() -> Any:
    query = read_export(InvoiceQuery())
    svc = service()
    rows = invoice_report_rows(iter_invoices(svc, invoice_filter(query)), account_days(svc), account_zones(svc))
    return xlsx(INVOICE_REPORT_COLUMNS, rows, "invoices", "Invoices")
