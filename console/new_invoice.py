"""Create invoice: prepaid (a recharge amount before tax) or postpaid (the usage of a date
range, its records fetched and shown first), then Create, or Create & Claim with the
payment's details. The form's key is the invoice's idempotency key, or the claim's payment
id: sending the same form twice issues one invoice."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from console.access import caller, page, service
from console.forms import WHOLE_FORM, form_errors, form_key
from ledger_core import commands
from ledger_core.access import Role
from ledger_core.errors import InvalidInput, LedgerError
from service.invoicing import issue_manual_invoice, preview_usage_invoice

blp = Blueprint("new_invoice", __name__)
TYPES = ("prepaid", "postpaid")
FIELDS = ("account_id", "invoice_date", "due_date", "amount", "description", "terms", "notes", "date_from",
          "date_to", "method", "reference")
MAX_TEXT = 2_000


@blp.route("/invoices/new", methods=["GET", "POST"])
@page(Role.FINANCE)
def new_invoice() -> Any:
    values = {name: (request.values.get(name) or "").strip() for name in FIELDS}
    kind = request.values.get("type") if request.values.get("type") in TYPES else "prepaid"
    errors: dict[str, str] = {}
    preview = None
    if values["account_id"] and not caller().sees(values["account_id"]):
        abort(404)
    if kind == "postpaid" and values["account_id"] and values["date_from"] and values["date_to"]:
        try:
            preview = preview_usage_invoice(service(), values["account_id"], _day(values, "date_from"),
                                            _day(values, "date_to"))
        except LedgerError as error:
            errors = form_errors(error, FIELDS)
    if request.method == "POST" and not errors:
        try:
            invoice_id = _create(kind, values, claim=request.form.get("action") == "create_and_claim")
        except LedgerError as error:
            errors = form_errors(error, FIELDS)
        else:
            row = service().view.invoice(invoice_id)
            flash(f"Invoice {row.number if row else invoice_id} created"
                  + (" and its payment claimed." if request.form.get("action") == "create_and_claim" else "."))
            return redirect(url_for("invoicing.invoices", account_id=values["account_id"]))
    status = 422 if errors and request.method == "POST" else 400 if errors else 200
    return render_template("new_invoice.html", kind=kind, values=values, errors=errors, preview=preview,
                           form_key=request.form.get("form_key") or form_key(), whole_form=WHOLE_FORM), status


def _create(kind: str, values: dict[str, str], *, claim: bool) -> str:
    if not values["account_id"]:
        raise InvalidInput("choose the user (account) to invoice", field="account_id")
    for name in ("description", "terms", "notes", "method", "reference"):
        if len(values[name]) > MAX_TEXT:
            raise InvalidInput(f"at most {MAX_TEXT} characters", field=name)
    key = request.form.get("form_key") or form_key()
    paid = commands.PaymentReceived(key, method=values["method"], reference=values["reference"]) if claim else None
    given = {"description": values["description"], "terms": values["terms"] or None, "notes": values["notes"] or None,
             "invoice_date": _day(values, "invoice_date"), "due_date": _day(values, "due_date"),
             "idempotency_key": None if claim else key}
    if kind == "prepaid":
        if not values["amount"]:
            raise InvalidInput("give the recharge amount before tax", field="amount")
        command: commands.InvoiceTopup | commands.InvoiceUsage = commands.InvoiceTopup(
            values["account_id"], amount=values["amount"], paid=paid, **given)  # type: ignore[arg-type]
    else:
        command = commands.InvoiceUsage(values["account_id"], date_from=_required_day(values, "date_from"),
                                        date_to=_required_day(values, "date_to"), paid=paid, **given)
    invoice_id, _ = issue_manual_invoice(service(), command)
    return invoice_id


def _day(values: dict[str, str], name: str) -> date | None:
    if not values[name]:
        return None
    try:
        return date.fromisoformat(values[name])
    except ValueError:
        raise InvalidInput(f"{values[name]!r} is no date (YYYY-MM-DD)", field=name) from None


def _required_day(values: dict[str, str], name: str) -> date:
    day = _day(values, name)
    if day is None:
        raise InvalidInput("give the date range to invoice", field=name)
    return day
