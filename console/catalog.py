"""An account's subscriptions and orders, read from their read models with filters and pages.

Finance subscribes the account to a package; changes a subscription's package or buys an
add-on after a preview of what it posts; cancels, reactivates or deletes a subscription;
pays a pending order (from the balance, or recorded as paid outside) or cancels it; exports
orders; downloads a paid order's receipt."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from marshmallow import Schema

from console.access import caller, may, page, service, visible
from console.downloads import pdf, xlsx
from console.forms import form_key, whole_number
from console.queries import PAGE_ROWS, choice, cursor, read, read_export, text
from exporters.columns import ORDER_REPORT_COLUMNS
from exporters.pdf import render_receipt_pdf
from ledger_core import commands
from ledger_core.access import Role
from ledger_core.errors import LedgerError
from ledger_core.order import OrderKind, OrderStatus, PaymentMethod
from ledger_core.subscription import SubscriptionStatus
from projections.orders import OrderFilter
from projections.subscriptions import SubscriptionFilter
from service.documents import issuer_of, order_report_rows, receipt_document
from service.exports import iter_orders
from service.subscriptions import preview_change
from service.wire import DayOrTime

blp = Blueprint("catalog", __name__)
SUBSCRIPTION_STATUSES = tuple(s.value for s in SubscriptionStatus)
ORDER_STATUSES = tuple(s.value for s in OrderStatus)
MAX_ADDONS = 10_000  # of one add-on on one subscription, from a form


class SubscriptionQuery(Schema):
    q = text()
    status = choice(SUBSCRIPTION_STATUSES)
    payment_method = text(64)
    before = cursor()


class OrderQuery(Schema):
    q = text()
    status = choice(ORDER_STATUSES)
    kind = choice(tuple(k.value for k in OrderKind))
    product = text()
    resource_id = text(64)
    created_from = DayOrTime()
    created_to = DayOrTime()
    before = cursor()


def order_filter(account_id: str, query: dict[str, Any]) -> OrderFilter:
    return OrderFilter(account_id=account_id, status=query.get("status"), kind=query.get("kind"),
                       product=query.get("product"), resource_id=query.get("resource_id"),
                       created_from=query.get("created_from"), created_to=query.get("created_to"),
                       text=query.get("q"), before_position=query.get("before"))


@blp.route("/accounts/<account_id>/subscriptions")
@page(Role.FINANCE, Role.AUDITOR)
def subscriptions(account_id: str) -> Any:
    row = service().account_row(account_id)
    query, errors = read(SubscriptionQuery())
    rows, next_position = service().view.subscriptions(SubscriptionFilter(
        account_id=account_id, status=query.get("status"), text=query.get("q"),
        payment_method_id=query.get("payment_method"), before_position=query.get("before")), PAGE_ROWS)
    packages = _plans("package", row.currency)
    return render_template("subscriptions.html", row=row, rows=rows, errors=errors, next_position=next_position,
                           statuses=SUBSCRIPTION_STATUSES, writes=may(Role.FINANCE), form_key=form_key(),
                           packages=packages), 400 if errors else 200


@blp.route("/accounts/<account_id>/orders")
@page(Role.FINANCE, Role.AUDITOR)
def orders(account_id: str) -> Any:
    row = service().account_row(account_id)
    query, errors = read(OrderQuery())
    rows, next_position = service().view.orders(order_filter(account_id, query), PAGE_ROWS)
    return render_template("orders.html", row=row, rows=rows, errors=errors, next_position=next_position,
                           statuses=ORDER_STATUSES, kinds=[k.value for k in OrderKind], writes=may(Role.FINANCE)), 400 if errors else 200


@blp.route("/accounts/<account_id>/orders/export.xlsx")
@page(Role.FINANCE, Role.AUDITOR)
def export_orders(account_id: str) -> Any:
    service().account_row(account_id)
    query = read_export(OrderQuery())
    rows = order_report_rows(iter_orders(service(), order_filter(account_id, query)))
    return xlsx(ORDER_REPORT_COLUMNS, rows, f"{account_id}-orders", "Orders")


@blp.route("/accounts/<account_id>/subscriptions/<subscription_id>/change", methods=["GET", "POST"])
@page(Role.FINANCE)
def change(account_id: str, subscription_id: str) -> Any:
    """Change the package (now, prorated, or at the renewal) or buy an add-on (active at
    once): what it posts and does to the next invoice is shown before anything is written,
    and the change then posts what the preview showed."""
    svc = service()
    current = svc.commands.subscription(account_id, subscription_id)
    kind = "addon" if request.values.get("kind") == "addon" else "package"
    plans = _plans(kind, svc.account_row(account_id).currency)
    plan_id, key = request.values.get("plan_id") or "", request.form.get("form_key") or None
    at_renewal = request.values.get("when") == "renewal"
    preview, error = None, None
    if plan_id:
        try:
            if kind == "addon":
                quantity = whole_number(request.values.get("quantity"), "quantity", 1, MAX_ADDONS) or 1
                command: Any = commands.AddAddon(account_id, subscription_id, plan_id=plan_id, quantity=quantity,
                                                 idempotency_key=key)
            else:
                command = commands.ChangePackage(account_id, subscription_id, plan_id=plan_id, at_renewal=at_renewal,
                                                 idempotency_key=key)
            if request.method == "POST":
                svc.handle(command)
                flash(f"Subscription {subscription_id}: " + (f"add-on {plan_id} added." if kind == "addon" else
                      f"package changed to {plan_id}" + (" at its renewal." if at_renewal else ".")))
                return redirect(url_for("catalog.subscriptions", account_id=account_id))
            preview = preview_change(svc, account_id, replace(command, idempotency_key=None))
        except LedgerError as refused:
            error = refused.message
    return render_template("change_subscription.html", row=svc.account_row(account_id), subscription=current,
                           kind=kind, plans=plans, plan_id=plan_id, at_renewal=at_renewal, preview=preview,
                           error=error, form_key=form_key()), 422 if error else 200


@blp.route("/accounts/<account_id>/subscriptions", methods=["POST"])
@page(Role.FINANCE)
def subscribe(account_id: str) -> Any:
    """A new subscription to a package, its first period charged from today."""
    plan_id = request.form.get("plan_id") or ""
    _done(commands.Subscribe(account_id, plan_id=plan_id, subscriber=(request.form.get("subscriber") or "").strip(),
                             idempotency_key=request.form.get("form_key") or None),
          f"Subscribed to {plan_id}.")
    return redirect(url_for("catalog.subscriptions", account_id=account_id))


def _plans(kind: str, currency: str) -> list[Any]:
    """The catalog's plans of this kind an account in ``currency`` may take (not retired)."""
    return [p for p in service().commands.plans() if p.kind == kind and not p.retired and p.currency == currency]



@blp.route("/accounts/<account_id>/subscriptions/<subscription_id>", methods=["POST"])
@page(Role.FINANCE)
def change_subscription(account_id: str, subscription_id: str) -> Any:
    action, key = request.form.get("action"), request.form.get("form_key") or None
    if action == "delete":
        command: Any = commands.DeleteSubscription(account_id, subscription_id)
    elif action == "reactivate":
        command = commands.ReactivateSubscription(account_id, subscription_id, idempotency_key=key)
    elif action in ("cancel_at_period_end", "cancel_now"):
        command = commands.CancelSubscription(account_id, subscription_id, at_period_end=action == "cancel_at_period_end",
                                              idempotency_key=key)
    else:
        abort(400, "choose an action")
    _done(command, f"Subscription {subscription_id}: {action.replace('_', ' ')}.")
    return redirect(url_for("catalog.subscriptions", account_id=account_id))


@blp.route("/accounts/<account_id>/orders/<order_id>", methods=["POST"])
@page(Role.FINANCE)
def change_order(account_id: str, order_id: str) -> Any:
    action = request.form.get("action")
    if action == "cancel":
        command: Any = commands.CancelOrder(account_id, order_id)
    elif action in (PaymentMethod.BALANCE.value, PaymentMethod.EXTERNAL.value):
        command = commands.PayOrder(account_id, order_id, method=action, paid_by=caller().key_id,
                                    reference=(request.form.get("reference") or "").strip())
    else:
        abort(400, "choose an action")
    _done(command, f"Order {order_id}: {'cancelled' if action == 'cancel' else 'paid'}.")
    return redirect(url_for("catalog.orders", account_id=account_id))


@blp.route("/orders/<order_id>/receipt.pdf")
@page(Role.FINANCE)
def order_receipt(order_id: str) -> Any:
    svc = service()
    visible(svc.view.order(order_id))
    return pdf(render_receipt_pdf(receipt_document(svc, order_id), issuer_of(svc.settings)), f"receipt-{order_id}")


def _done(command: Any, message: str) -> None:
    try:
        service().handle(command)
        flash(message)
    except LedgerError as error:
        flash(error.message, "error")
