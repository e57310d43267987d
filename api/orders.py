"""/v1/accounts/{id}/orders (place, pay, cancel, read) and /v1/orders (list, search, export).

Placing takes an idempotency key (body or Idempotency-Key header); paying and cancelling
are safe to repeat: a second one is refused with 409 ``order_not_pending`` and moves nothing.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Response
from flask.views import MethodView
from marshmallow import RAISE, Schema, fields, validate

from api.accounts import Blueprint, balance_of, decode_cursor, encode_cursor, keyed, service
from api.auth import allow, visible_account
from api.exports import csv_response, xlsx_response
from api.schemas import DEFAULT_PAGE_ROWS, BalanceSchema, choice_field, key_field, text_field
from exporters.columns import ORDER_REPORT_COLUMNS
from exporters.pdf import render_receipt_pdf
from ledger_core import commands
from ledger_core.access import Role
from ledger_core.errors import InvariantViolation
from ledger_core.order import ORDER_ID_PATTERN, OrderKind, OrderStatus, PaymentMethod
from projections.orders import OrderFilter, OrderRow
from projections.views import MAX_PAGE_ROWS
from service.documents import issuer_of, order_report_rows, receipt_document
from service.exports import iter_orders
from service.wire import Amount, DayOrTime, Quantity, UnitPrice, UtcDateTime

blp = Blueprint("orders", __name__, url_prefix="/v1/accounts", description="An account's orders")
all_orders = Blueprint("order_list", __name__, url_prefix="/v1/orders", description="Orders across accounts")


class PlaceOrderSchema(Schema):
    kind = choice_field(OrderKind, required=True, metadata={"description": "package, agent (a proxy) or cloud_phone"})
    product = text_field(200, required=True)
    quantity = Quantity(load_default=Decimal(1))
    unit_price = UnitPrice(required=True)
    order_id = fields.String(validate=validate.Regexp(ORDER_ID_PATTERN))
    details = text_field(2000, load_default="", free_text=True)
    ordered_by = text_field(200, load_default="", metadata={"description": "who placed it"})
    resource_id = text_field(200, metadata={"description": "a cloud phone's id"})
    running_price = UnitPrice(metadata={"description": "cloud_phone: its fee per running_unit while powered up"})
    running_unit = choice_field(("minute", "hour"), metadata={"description": "billed per started minute or hour"})
    idempotency_key = key_field()


class PowerSchema(Schema):
    event_id = text_field(128, required=True, metadata={"description": "a repeat of an id changes nothing"})
    state = choice_field(("on", "off"), required=True)
    at = UtcDateTime(metadata={"description": "when it happened (default now); events arrive in time order"})


class PayOrderSchema(Schema):
    method = choice_field(PaymentMethod, required=True,
                          metadata={"description": "balance (usable credits must cover it) or external"})
    reference = text_field(128, load_default="", metadata={"description": "the external payment's reference"})
    paid_by = text_field(200, load_default="", metadata={"description": "the paying user"})


class OrderQuerySchema(Schema):
    account_id = text_field(64)
    kind = choice_field(OrderKind)
    status = choice_field(OrderStatus)
    product = text_field(200)
    resource_id = text_field(200, metadata={"description": "a cloud phone's id"})
    created_from = DayOrTime(metadata={"description": "a time, or a day or month (UTC days)"})
    created_to = DayOrTime()
    q = text_field(128, metadata={"description": "in the order number, product and cloud phone id"})
    cursor = text_field(64)
    limit = fields.Integer(load_default=DEFAULT_PAGE_ROWS, validate=validate.Range(1, MAX_PAGE_ROWS))


class OrderExportQuerySchema(OrderQuerySchema):
    class Meta:
        exclude = ("cursor", "limit")


class OrderSchema(Schema):
    order_id = fields.String()
    account_id = fields.String()
    kind = fields.String()
    product = fields.String()
    status = fields.String(metadata={"description": "pending_payment, completed or cancelled"})
    quantity = Quantity()
    unit_price = UnitPrice()
    amount = Amount()
    currency = fields.String()
    details = fields.String()
    ordered_by = fields.String()
    resource_id = fields.String(allow_none=True)
    created_at = UtcDateTime()
    payment_method = fields.String(allow_none=True)
    payment_reference = fields.String()
    paid_by = fields.String()
    paid_at = UtcDateTime(allow_none=True)
    running_price = UnitPrice(allow_none=True)
    running_unit = fields.String(allow_none=True)
    running_fees = Amount(metadata={"description": "what its running time has cost so far"})
    powered_on_since = UtcDateTime(allow_none=True)


class OrderPageSchema(Schema):
    items = fields.List(fields.Nested(OrderSchema))
    next_cursor = fields.String(allow_none=True)


class OrderChangedSchema(Schema):
    order = fields.Nested(OrderSchema)
    replayed = fields.Boolean()
    balance = fields.Nested(BalanceSchema)


def order_of(row: OrderRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in OrderSchema._declared_fields}


def _filter(query: dict[str, Any], account_id: str | None) -> OrderFilter:
    return OrderFilter(account_id=account_id, kind=query.get("kind"), status=query.get("status"),
                       product=query.get("product"), resource_id=query.get("resource_id"),
                       created_from=query.get("created_from"), created_to=query.get("created_to"),
                       text=query.get("q"),
                       before_position=decode_cursor(query["cursor"]) if "cursor" in query else None)


def _found(account_id: str, order_id: str) -> OrderRow:
    service().commands.order(account_id, order_id)  # 404 unless it is this account's
    row = service().view.order(order_id)
    if row is None:  # written, not yet projected: catch up once
        service().projector.catch_up()
        row = service().view.order(order_id)
    if row is None:
        raise InvariantViolation(f"order {order_id!r} has events but no row in the read model")
    return row


def _changed(account_id: str, order_id: str, replayed: bool = False) -> dict[str, Any]:
    return {"order": order_of(_found(account_id, order_id)), "replayed": replayed,
            "balance": balance_of(service().account_row(account_id))}


@all_orders.route("")
class AllOrders(MethodView):
    @allow(Role.FINANCE, Role.SERVICE, Role.AUDITOR)
    @all_orders.arguments(OrderQuerySchema, location="query")
    @all_orders.response(200, OrderPageSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Orders, newest first: search by order number or product, filters by creation date,
        type, status, product and cloud phone id, and a cursor."""
        rows, next_position = service().view.orders(_filter(query, visible_account(query.get("account_id"))),
                                                    query["limit"])
        return {"items": [order_of(r) for r in rows],
                "next_cursor": None if next_position is None else encode_cursor(next_position)}


def _report(query: dict[str, Any]) -> Any:
    return order_report_rows(iter_orders(service(), _filter(query, visible_account(query.get("account_id")))))


@all_orders.route("/export.xlsx")
class OrdersXlsx(MethodView):
    @allow(Role.FINANCE, Role.AUDITOR)
    @all_orders.arguments(OrderExportQuerySchema, location="query", unknown=RAISE)
    @all_orders.response(200, description="The orders as an Excel workbook")
    def get(self, query: dict[str, Any]) -> Any:
        return xlsx_response(ORDER_REPORT_COLUMNS, _report(query), "orders.xlsx", "Orders")


@all_orders.route("/export.csv")
class OrdersCsv(MethodView):
    @allow(Role.FINANCE, Role.AUDITOR)
    @all_orders.arguments(OrderExportQuerySchema, location="query", unknown=RAISE)
    @all_orders.response(200, description="The orders as CSV")
    def get(self, query: dict[str, Any]) -> Any:
        return csv_response(ORDER_REPORT_COLUMNS, _report(query), "orders.csv")


@blp.route("/<account_id>/orders")
class Orders(MethodView):
    @allow(Role.FINANCE, Role.SERVICE)
    @blp.arguments(PlaceOrderSchema)
    @blp.response(201, OrderChangedSchema)
    @blp.alt_response(200, schema=OrderChangedSchema, description="A repeat of an earlier idempotency key")
    def post(self, body: dict[str, Any], account_id: str) -> Any:
        """Place an order, pending payment: no money moves until it is paid."""
        booking = service().handle(commands.PlaceOrder(account_id, **keyed(body)))
        return _changed(account_id, booking.transaction_no, booking.replayed), 200 if booking.replayed else 201


@blp.route("/<account_id>/orders/<order_id>")
class OrderResource(MethodView):
    @allow(Role.FINANCE, Role.SERVICE, Role.AUDITOR)
    @blp.response(200, OrderSchema)
    def get(self, account_id: str, order_id: str) -> dict[str, Any]:
        return order_of(_found(account_id, order_id))


@blp.route("/<account_id>/orders/<order_id>/pay")
class PayOrder(MethodView):
    @allow(Role.FINANCE, Role.SERVICE)
    @blp.arguments(PayOrderSchema)
    @blp.response(200, OrderChangedSchema)
    def post(self, body: dict[str, Any], account_id: str, order_id: str) -> dict[str, Any]:
        """Complete the order and post its charge: from the balance, or by an external payment
        (booked as a recharge, whose receipt is e-mailed, that the charge spends)."""
        service().handle(commands.PayOrder(account_id, order_id, **body))
        return _changed(account_id, order_id)


@blp.route("/<account_id>/orders/<order_id>/power")
class Power(MethodView):
    @allow(Role.FINANCE, Role.SERVICE)
    @blp.arguments(PowerSchema)
    @blp.response(200, OrderChangedSchema)
    def post(self, body: dict[str, Any], account_id: str, order_id: str) -> dict[str, Any]:
        """A cloud phone powered up or down: a power-down posts its running fee (per started
        unit, per billing cycle it spans) as usage of the cloud phone."""
        service().handle(commands.ReportPower(account_id, order_id, **body))
        return _changed(account_id, order_id)


@blp.route("/<account_id>/orders/<order_id>/receipt.pdf")
class OrderReceipt(MethodView):
    @allow(Role.FINANCE, Role.SERVICE)
    @blp.response(200, description="The paid order's receipt as PDF", content_type="application/pdf")
    def get(self, account_id: str, order_id: str) -> Any:
        """The receipt of a paid order (the one e-mailed to the buyer and the billing contacts)."""
        _found(account_id, order_id)
        svc = service()
        pdf = render_receipt_pdf(receipt_document(svc, order_id), issuer_of(svc.settings))
        return Response(pdf, content_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="receipt-{order_id}.pdf"'})


@blp.route("/<account_id>/orders/<order_id>/cancel")
class CancelOrder(MethodView):
    @allow(Role.FINANCE, Role.SERVICE)
    @blp.response(200, OrderChangedSchema)
    def post(self, account_id: str, order_id: str) -> dict[str, Any]:
        """Cancel a pending order; no money moves."""
        service().handle(commands.CancelOrder(account_id, order_id))
        return _changed(account_id, order_id)
