"""An account's subscriptions (plans, periods, next payment) and orders (packages, agents,
cloud phones; paid, running fees), read from their read models, with filters and pages;
finance cancels or reactivates a subscription and pays (from the balance, or recorded as
paid outside) or cancels a pending order, and downloads a paid order's receipt."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from marshmallow import Schema

from console.access import caller, may, page, service
from console.downloads import pdf
from console.forms import form_key
from console.queries import PAGE_ROWS, choice, cursor, read, text
from exporters.pdf import render_receipt_pdf
from ledger_core import commands
from ledger_core.access import Role
from ledger_core.errors import LedgerError
from ledger_core.order import OrderKind, OrderStatus, PaymentMethod
from ledger_core.subscription import SubscriptionStatus
from projections.orders import OrderFilter
from projections.subscriptions import SubscriptionFilter
from service.documents import issuer_of, receipt_document

blp = Blueprint("catalog", __name__)
SUBSCRIPTION_STATUSES = tuple(s.value for s in SubscriptionStatus)
ORDER_STATUSES = tuple(s.value for s in OrderStatus)


class SubscriptionQuery(Schema):
    q = text()
    status = choice(SUBSCRIPTION_STATUSES)
    before = cursor()


class OrderQuery(Schema):
    q = text()
    status = choice(ORDER_STATUSES)
    kind = choice(tuple(k.value for k in OrderKind))
    before = cursor()


@blp.route("/accounts/<account_id>/subscriptions")
@page(Role.FINANCE, Role.AUDITOR)
def subscriptions(account_id: str) -> Any:
    row = service().account_row(account_id)
    query, errors = read(SubscriptionQuery())
    rows, next_position = service().view.subscriptions(SubscriptionFilter(
        account_id=account_id, status=query.get("status"), text=query.get("q"),
        before_position=query.get("before")), PAGE_ROWS)
    return render_template("subscriptions.html", row=row, rows=rows, errors=errors, next_position=next_position,
                           statuses=SUBSCRIPTION_STATUSES, writes=may(Role.FINANCE), form_key=form_key()), 400 if errors else 200


@blp.route("/accounts/<account_id>/orders")
@page(Role.FINANCE, Role.AUDITOR)
def orders(account_id: str) -> Any:
    row = service().account_row(account_id)
    query, errors = read(OrderQuery())
    rows, next_position = service().view.orders(OrderFilter(
        account_id=account_id, status=query.get("status"), kind=query.get("kind"), text=query.get("q"),
        before_position=query.get("before")), PAGE_ROWS)
    return render_template("orders.html", row=row, rows=rows, errors=errors, next_position=next_position,
                           statuses=ORDER_STATUSES, kinds=[k.value for k in OrderKind], writes=may(Role.FINANCE)), 400 if errors else 200


@blp.route("/accounts/<account_id>/subscriptions/<subscription_id>", methods=["POST"])
@page(Role.FINANCE)
def change_subscription(account_id: str, subscription_id: str) -> Any:
    action, key = request.form.get("action"), request.form.get("form_key") or None
    if action == "reactivate":
        command: Any = commands.ReactivateSubscription(account_id, subscription_id, idempotency_key=key)
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
    order = svc.view.order(order_id)
    if order is None or not caller().sees(order.account_id):
        abort(404)
    return pdf(render_receipt_pdf(receipt_document(svc, order_id), issuer_of(svc.settings)), f"receipt-{order_id}")


def _done(command: Any, message: str) -> None:
    try:
        service().handle(command)
        flash(message)
    except LedgerError as error:
        flash(error.message, "error")
