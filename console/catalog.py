"""An account's subscriptions (plans, periods, next payment) and orders (packages, agents,
cloud phones; paid, running fees), read from their read models, with filters and pages."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from marshmallow import Schema

from console.access import page, service
from console.queries import PAGE_ROWS, choice, cursor, read, text
from ledger_core.access import Role
from ledger_core.order import OrderKind, OrderStatus
from ledger_core.subscription import SubscriptionStatus
from projections.orders import OrderFilter
from projections.subscriptions import SubscriptionFilter

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
                           statuses=SUBSCRIPTION_STATUSES), 400 if errors else 200


@blp.route("/accounts/<account_id>/orders")
@page(Role.FINANCE, Role.AUDITOR)
def orders(account_id: str) -> Any:
    row = service().account_row(account_id)
    query, errors = read(OrderQuery())
    rows, next_position = service().view.orders(OrderFilter(
        account_id=account_id, status=query.get("status"), kind=query.get("kind"), text=query.get("q"),
        before_position=query.get("before")), PAGE_ROWS)
    return render_template("orders.html", row=row, rows=rows, errors=errors, next_position=next_position,
                           statuses=ORDER_STATUSES, kinds=[k.value for k in OrderKind]), 400 if errors else 200
