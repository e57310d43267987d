"""/v1/bills: one bill per account, product and billing cycle (read-only)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask.views import MethodView
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.accounts import Blueprint, decode_cursor, encode_cursor, service
from api.auth import allow, visible, visible_account
from api.schemas import DEFAULT_PAGE_ROWS, choice_field, text_field
from ledger_core.access import Role
from ledger_core.cycles import Bound
from ledger_core.errors import BillNotFound
from projections.bills import CLEARED, PENDING, BillFilter, BillRow
from projections.views import MAX_PAGE_ROWS
from service.wire import Amount, DayOrTime, Quantity, UtcDateTime

bills = Blueprint("bills", __name__, url_prefix="/v1/bills", description="Bills per product and cycle")


class BillQuerySchema(Schema):
    account_id = text_field(64)
    product = text_field(128)
    status = choice_field((PENDING, CLEARED))
    cycle = DayOrTime(metadata={"description": "the cycle that starts in this month (2026-11) or on this local "
                                               "day; a time: the cycle starting then"})
    cycle_from = DayOrTime(metadata={"description": "cycles starting at or after a time, or on or after the first "
                                                    "local day of a day or month"})
    cycle_to = DayOrTime(metadata={"description": "cycles starting before a time, or on or before the last local "
                                                  "day of a day or month"})

    @validates_schema
    def _one_way(self, data: dict[str, Any], **_: Any) -> None:
        if "cycle" in data and ("cycle_from" in data or "cycle_to" in data):
            raise ValidationError("give cycle, or cycle_from and cycle_to", field_name="cycle")
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
        cycle_from=query.get("cycle_from", query.get("cycle")), cycle_to=query.get("cycle_to", _just(query.get("cycle"))),
        before_position=decode_cursor(query["cursor"]) if "cursor" in query else None,
    )


def _just(cycle: Bound | None) -> Bound | None:
    """``cycle`` as an upper bound: a time names the one cycle starting then."""
    if cycle is None or cycle.moment is None:
        return cycle
    return Bound(moment=cycle.moment + timedelta(microseconds=1))


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
