"""/v1/invoices/reminders: queue payment reminders in bulk, and see the outbox.

Queueing only writes outbox rows (202: accepted, not yet sent); `ledger send-reminders`
delivers them.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.accounts import Blueprint, decode_cursor, encode_cursor, service
from api.auth import allow
from api.schemas import DEFAULT_PAGE_ROWS, choice_field, key_field, text_field
from ledger_core.access import Role
from ledger_core.account import ACCOUNT_ID_PATTERN
from ledger_core.invoicing import DueStatus
from persistence.reminder_outbox import MAX_LIST_ROWS, ReminderStatus
from service.reminders import REMINDABLE, ReminderFilter, queue_reminders
from service.wire import Amount, DayOrTime, UtcDateTime

blp = Blueprint("reminders", __name__, url_prefix="/v1/invoices/reminders",
                description="Payment reminders for unpaid and partially paid invoices")


class QueueRemindersSchema(Schema):
    idempotency_key = key_field(required=True)
    account_id = fields.String(validate=validate.Regexp(ACCOUNT_ID_PATTERN))
    number = text_field(64, min_length=1)
    payment_status = choice_field(REMINDABLE)
    due_status = choice_field(DueStatus)
    today = fields.Date(metadata={"description": "the day that decides due_status; default: today (UTC)"})
    period_from = DayOrTime(metadata={"description": "invoices whose period ends after: a time, or a day or month "
                                                      "(the account's local days)"})
    period_to = DayOrTime(metadata={"description": "invoices whose period starts before: a time, or up to the "
                                                    "last day of a day or month"})


class QueuedSchema(Schema):
    matched = fields.Integer()
    queued = fields.Integer()
    already_queued = fields.Integer()
    skipped_no_email = fields.Integer()


class ReminderQuerySchema(Schema):
    status = choice_field(ReminderStatus)
    cursor = text_field(64)
    limit = fields.Integer(load_default=DEFAULT_PAGE_ROWS, validate=validate.Range(1, MAX_LIST_ROWS))


class ReminderSchema(Schema):
    id = fields.Integer()
    batch_key = fields.String()
    invoice_id = fields.String()
    invoice_number = fields.String()
    account_id = fields.String()
    recipients = fields.List(fields.String())
    subject = fields.String()
    body = fields.String()
    currency = fields.String()
    amount_outstanding = Amount()
    due_on = fields.String()
    created_at = UtcDateTime()
    status = fields.String()
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)
    sent_at = UtcDateTime(allow_none=True)


class ReminderPageSchema(Schema):
    items = fields.List(fields.Nested(ReminderSchema))
    next_cursor = fields.String(allow_none=True)


@blp.route("")
class Reminders(MethodView):
    @allow(Role.FINANCE, all_accounts=True)
    @blp.arguments(QueueRemindersSchema)
    @blp.response(202, QueuedSchema)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Queue one reminder per approved, unpaid or partially paid invoice the filters pick
        (at most 10,000). The same idempotency_key again queues no invoice twice."""
        key = body.pop("idempotency_key")
        today = body.pop("today", None)
        return asdict(queue_reminders(service(), ReminderFilter(**body), key, today))

    @allow(Role.FINANCE, all_accounts=True)
    @blp.arguments(ReminderQuerySchema, location="query")
    @blp.response(200, ReminderPageSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Outbox rows, newest first, with cursor pagination."""
        before = decode_cursor(query["cursor"]) if "cursor" in query else None
        rows, next_id = service().reminder_outbox.page(query.get("status"), query["limit"], before)
        return {"items": rows, "next_cursor": None if next_id is None else encode_cursor(next_id)}
