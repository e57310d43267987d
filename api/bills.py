"""/v1/bills: one bill per account, product and billing cycle (read-only)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.accounts import Blueprint, decode_cursor, encode_cursor, service
from api.auth import allow, visible, visible_account
from api.schemas import DEFAULT_PAGE_ROWS, choice_field, text_field
from ledger_core.access import Role
from ledger_core.errors import BillNotFound
from projections.bills import CLEARED, PENDING, BillFilter, BillRow
from projections.views import MAX_PAGE_ROWS
from service.wire import Amount, Quantity, UtcDateTime

bills = Blueprint("bills", __name__, url_prefix="/v1/bills", description="Bills per product and cycle")


class BillQuerySchema(Schema):
    account_id = text_field(64)
    product = text_field(128)
    status = choice_field((PENDING, CLEARED))
    cycle_from = UtcDateTime(metadata={"description": "cycles starting at or after"})
    cycle_to = UtcDateTime(metadata={"description": "cycles starting before"})
    sort = choice_field(("newest", "oldest"), load_default="newest")
    cursor = text_field(64)
    limit = fields.Integer(load_default=DEFAULT_PAGE_ROWS, validate=validate.Range(1, MAX_PAGE_ROWS))


class BillLineSchema(Schema):
    channel_account = fields.String(allow_none=True)
    application_id = fields.String(allow_none=True)
    application_name = fields.String(allow_none=True)
    app_key = fields.String(allow_none=True)
    unit = fields.String(allow_none=True)
    quantity = Quantity(allow_none=True)
    amount = Amount()


class BillSchema(Schema):
    bill_no = fields.String()
    account_id = fields.String()
    currency = fields.String()
    product = fields.String()
    cycle_start = UtcDateTime()
    cycle_end = UtcDateTime()
    quantity = Quantity(allow_none=True, metadata={"description": "null when measured in several units"})
    unit = fields.String(allow_none=True)
    amount = Amount(metadata={"description": "consumption amount (a cost)"})
    overdraft = Amount(metadata={"description": "the part drawn on overdraft"})
    status = fields.String(metadata={"description": "Pending until settled, then Cleared"})
    invoice_id = fields.String(allow_none=True)
    lines = fields.List(fields.Nested(BillLineSchema))
    updated_at = UtcDateTime()


class BillPageSchema(Schema):
    items = fields.List(fields.Nested(BillSchema))
    next_cursor = fields.String(allow_none=True)


def bill_filter(query: dict[str, Any]) -> BillFilter:
    return BillFilter(
        account_id=visible_account(query.get("account_id")), product=query.get("product"), status=query.get("status"),
        cycle_from=query.get("cycle_from"), cycle_to=query.get("cycle_to"),
        before_position=decode_cursor(query["cursor"]) if "cursor" in query else None,
    )


def find_bill(bill_no: str) -> BillRow:
    return visible(service().view.bill(bill_no), BillNotFound(f"no bill {bill_no!r}", bill_no=bill_no))


@bills.route("")
class BillList(MethodView):
    @allow(Role.FINANCE)
    @bills.arguments(BillQuerySchema, location="query")
    @bills.response(200, BillPageSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Bills with filters (account, product, cycle range, status), sorted, cursor-paginated."""
        rows, next_position = service().view.bills(bill_filter(query), query["limit"],
                                                   oldest_first=query["sort"] == "oldest")
        return {"items": rows, "next_cursor": None if next_position is None else encode_cursor(next_position)}


@bills.route("/<bill_no>")
class BillResource(MethodView):
    @allow(Role.FINANCE)
    @bills.response(200, BillSchema)
    def get(self, bill_no: str) -> BillRow:
        """One bill with its lines per application, AppKey and unit."""
        return find_bill(bill_no)
