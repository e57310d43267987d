"""Recurring invoices of an account: its billing cycle started or stopped, and its settings
(anchor day, payment terms, approval of drafts, time zone), beside the next invoice. Finance
reads them; changing them is an admin's, as in the API."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from console.access import may, page, service
from console.forms import WHOLE_FORM, form_errors, whole_number
from ledger_core import commands
from ledger_core.access import Role
from ledger_core.errors import LedgerError
from service.invoicing import future_invoice

blp = Blueprint("recurring", __name__)
SETTINGS = ("cycle_anchor_day", "payment_terms_days", "drafts_need_approval", "time_zone")


@blp.route("/accounts/<account_id>/recurring", methods=["GET"])
@page(Role.FINANCE)
def recurring(account_id: str, errors: dict[str, str] | None = None, status: int = 200) -> Any:
    svc = service()
    row = svc.account_row(account_id)
    return render_template("recurring.html", row=row, settings=row.billing_settings, future=future_invoice(svc, account_id),
                           errors=errors or {}, writes=may(Role.ADMIN), whole_form=WHOLE_FORM), status


@blp.route("/accounts/<account_id>/recurring", methods=["POST"])
@page()  # admins only
def change(account_id: str) -> Any:
    form = request.form
    try:
        if form.get("action") in ("start", "stop"):
            command = commands.UpdateAccount(account_id, cycle_running=form["action"] == "start")
        else:
            command = commands.UpdateAccount(
                account_id, cycle_anchor_day=whole_number(form.get("cycle_anchor_day"), "cycle_anchor_day", 0, 9_999),
                payment_terms_days=whole_number(form.get("payment_terms_days"), "payment_terms_days", 0, 9_999),
                drafts_need_approval=form.get("drafts_need_approval") == "yes",
                time_zone=(form.get("time_zone") or "").strip() or None)
        service().handle(command)
    except LedgerError as error:
        return recurring(account_id, form_errors(error, SETTINGS), 422)
    flash("Recurring invoice settings saved.")
    return redirect(url_for("recurring.recurring", account_id=account_id))
