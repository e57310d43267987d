"""Request and response shapes of invoices, payments and cycles."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.schemas import DEFAULT_PAGE_ROWS, BalanceSchema, choice_field, key_field, text_field
from ledger_core.invoicing import MAX_WORDING_CHARS, DueStatus, InvoiceStatus, PaymentStatus
from projections.views import MAX_PAGE_ROWS
from service.wire import Amount, DayOrTime, Quantity, UtcDateTime


# -- requests ------------------------------------------------------------------------
class InvoiceQuerySchema(Schema):
    account_id = text_field(64)
    number = text_field(32)
    status = choice_field(InvoiceStatus)
    payment_status = choice_field(PaymentStatus)
    due_status = choice_field(DueStatus)
    period_from = DayOrTime(metadata={"description": "invoices whose period ends after this time, or that cover "
                                                     "a local day on or after this day or month (2026-11, 2026-11-01)"})
    period_to = DayOrTime(metadata={"description": "invoices whose period starts before this time, or on or "
                                                   "before the last day of this day or month"})
    cursor = text_field(64)
    limit = fields.Integer(load_default=DEFAULT_PAGE_ROWS, validate=validate.Range(1, MAX_PAGE_ROWS))


class DashboardQuerySchema(Schema):
    account_id = text_field(64)
    period_from = DayOrTime()
    period_to = DayOrTime()


class PaymentQuerySchema(Schema):
    account_id = text_field(64)
    cursor = text_field(64)
    limit = fields.Integer(load_default=DEFAULT_PAGE_ROWS, validate=validate.Range(1, MAX_PAGE_ROWS))


class ClaimSchema(Schema):
    """Payment received for a manual invoice ("create and claim")."""

    payment_id = key_field(required=True)
    method = text_field(64, load_default="")
    reference = text_field(128, load_default="")
    received_at = UtcDateTime()


class ManualInvoiceSchema(Schema):
    type = choice_field(("topup", "usage"), required=True,
                   metadata={"description": "topup: prepaid credits bought; usage: postpaid usage of a date range"})
    amount = Amount(metadata={"description": "topup: the credits, before tax"})
    description = text_field(500, load_default="", free_text=True)
    date_from = fields.Date(metadata={"description": "usage: first local day (inclusive)"})
    date_to = fields.Date(metadata={"description": "usage: last local day (inclusive)"})
    invoice_date = fields.Date(metadata={"description": "the invoice's date, a local day (default today): not in "
                                                        "the future, nor before date_to (or today, if sooner)"})
    due_date = fields.Date(metadata={"description": "default: invoice date + the account's payment terms"})
    terms = text_field(MAX_WORDING_CHARS, free_text=True,
                       metadata={"description": "default: the issuer's (GET /v1/invoices/defaults)"})
    notes = text_field(MAX_WORDING_CHARS, free_text=True,
                       metadata={"description": "default: the issuer's (GET /v1/invoices/defaults)"})
    claim = fields.Nested(ClaimSchema)
    idempotency_key = key_field(metadata={"description": "makes a repeat of this request return the same invoice; "
                                                    "with a claim, its payment_id does that"})

    @validates_schema
    def _complete(self, data: dict[str, Any], **_: Any) -> None:
        if "claim" in data and "idempotency_key" in data:
            raise ValidationError("a claim's payment_id is the request's key: drop idempotency_key",
                                  field_name="idempotency_key")
        if data["type"] == "topup" and "amount" not in data:
            raise ValidationError("a top-up invoice needs an amount", field_name="amount")
        if data["type"] == "usage" and not ("date_from" in data and "date_to" in data):
            raise ValidationError("a usage invoice needs date_from and date_to", field_name="date_from")


class UsagePreviewQuerySchema(Schema):
    date_from = fields.Date(required=True, metadata={"description": "first local day (inclusive)"})
    date_to = fields.Date(required=True, metadata={"description": "last local day (inclusive)"})


class InvoiceDefaultsSchema(Schema):
    terms = text_field(MAX_WORDING_CHARS, free_text=True, metadata={"description": "terms & conditions"})
    notes = text_field(MAX_WORDING_CHARS, free_text=True, metadata={"description": "customer notes"})


class PaymentSchema(Schema):
    payment_id = key_field(required=True, metadata={"description": "idempotency key of the payment"})
    amount = Amount(required=True)
    invoice_id = text_field(100, metadata={"description": "apply here first; else oldest open invoices first"})
    method = text_field(64, load_default="")
    reference = text_field(128, load_default="")
    received_at = UtcDateTime()
    currency = fields.String()


class RefundSchema(Schema):
    idempotency_key = key_field(metadata={"description": "or the Idempotency-Key header: a repeat returns the first "
                                                    "result, the same key with another request is a 409"})
    amount = Amount(required=True)
    reference = text_field(128, required=True, validate=[validate.Length(min=1)])
    currency = fields.String()


class CloseCyclesSchema(Schema):
    as_of = UtcDateTime(metadata={"description": "close cycles that ended by then (default: now)"})


# -- responses -----------------------------------------------------------------------
class InvoiceLineSchema(Schema):
    line_no = fields.Integer()
    kind = fields.String()
    product = fields.String()
    description = fields.String()
    application_id = fields.String(allow_none=True)
    app_key = fields.String(allow_none=True)
    quantity = Quantity(allow_none=True)
    unit = fields.String(allow_none=True)
    amount = Amount()
    date_from = fields.String()
    date_to = fields.String()
    late = fields.Boolean(metadata={"description": "usage of an earlier, closed cycle that arrived after its close"})


class AllocationSchema(Schema):
    invoice_id = fields.String()
    amount = Amount()
    outstanding_after = Amount()


class PaymentRowSchema(Schema):
    payment_id = fields.String(metadata={"description": "the payment's id; for a recharge, its transaction number"})
    account_id = fields.String()
    currency = fields.String()
    received_at = UtcDateTime()
    amount = Amount()
    method = fields.String()
    reference = fields.String()
    allocations = fields.List(fields.Nested(AllocationSchema))


class InvoiceSchema(Schema):
    invoice_id = fields.String()
    number = fields.String(allow_none=True)
    account_id = fields.String()
    kind = fields.String()
    status = fields.String()
    payment_status = fields.String()
    due_status = fields.String()
    currency = fields.String()
    period_start = UtcDateTime()
    period_end = UtcDateTime()
    created_at = UtcDateTime()
    issued_at = UtcDateTime(allow_none=True)
    issue_date = fields.Date(allow_none=True, metadata={"description": "the invoice date: the local day of issued_at"})
    period_first_day = fields.Date(metadata={"description": "first local day of the period (account time zone)"})
    period_last_day = fields.Date(metadata={"description": "last local day, inclusive: as every document shows it"})
    due_on = fields.String(allow_none=True)
    subtotal = Amount()
    tax = Amount()
    total = Amount()
    paid = Amount()
    outstanding = Amount()
    description = fields.String()
    terms = fields.String()
    notes = fields.String()


class InvoiceDetailSchema(InvoiceSchema):
    lines = fields.List(fields.Nested(InvoiceLineSchema))
    payments = fields.List(fields.Nested(PaymentRowSchema))


class InvoicePageSchema(Schema):
    items = fields.List(fields.Nested(InvoiceSchema))
    next_cursor = fields.String(allow_none=True)


class PaymentPageSchema(Schema):
    items = fields.List(fields.Nested(PaymentRowSchema))
    next_cursor = fields.String(allow_none=True)


class DashboardGroupSchema(Schema):
    currency = fields.String()
    status = fields.String()
    payment_status = fields.String()
    invoices = fields.Integer()
    total = Amount()
    paid = Amount()
    outstanding = Amount()


class DashboardCountsSchema(Schema):
    total_invoices = fields.Integer()
    approved = fields.Integer()
    not_approved = fields.Integer(metadata={"description": "drafts"})
    void = fields.Integer()
    paid = fields.Integer()
    unsettled = fields.Integer(metadata={"description": "approved, unpaid or partially paid"})
    overdue = fields.Integer()


class DashboardCurrencySchema(DashboardCountsSchema):
    currency = fields.String()
    approved_total = Amount(metadata={"description": "sum of the approved invoices' totals"})
    paid_amount = Amount(metadata={"description": "paid on them"})
    outstanding = Amount(metadata={"description": "still owed on them"})


class DashboardSchema(DashboardCountsSchema):
    groups = fields.List(fields.Nested(DashboardGroupSchema), metadata={"description": "per currency and status"})
    currencies = fields.List(fields.Nested(DashboardCurrencySchema),
                             metadata={"description": "counts and sums per currency: never added across currencies"})


class PaymentResultSchema(Schema):
    transaction_no = fields.String(allow_none=True)
    amount = Amount()
    replayed = fields.Boolean()
    balance = fields.Nested(BalanceSchema)


class InvoiceIdsSchema(Schema):
    invoice_ids = fields.List(fields.String())
    balance = fields.Nested(BalanceSchema)


class FutureInvoiceSchema(Schema):
    account_id = fields.String()
    currency = fields.String()
    period_start = UtcDateTime()
    period_end = UtcDateTime()
    cut_off_date = fields.Date()
    expected_status = fields.String(metadata={"description": "draft, approved, or none (mode none or cycle stopped)"})
    invoice_mode = fields.String()
    cycle_running = fields.Boolean()


class UsageRecordSchema(Schema):
    date = fields.Date(metadata={"description": "the local day"})
    kind = fields.String(metadata={"description": "usage, charge or carry_over"})
    product = fields.String()
    description = fields.String()
    application_id = fields.String(allow_none=True)
    app_key = fields.String(allow_none=True)
    unit = fields.String(allow_none=True)
    quantity = Quantity(allow_none=True)
    amount = Amount()


class UsagePreviewSchema(Schema):
    account_id = fields.String()
    currency = fields.String()
    date_from = fields.Date()
    date_to = fields.Date()
    period_start = UtcDateTime()
    period_end = UtcDateTime()
    invoice_date = fields.Date(metadata={"description": "if issued now, with the default dates"})
    due_date = fields.Date()
    records = fields.List(fields.Nested(UsageRecordSchema),
                          metadata={"description": "what it bills: per local day, product, application and unit"})
    lines = fields.List(fields.Nested(InvoiceLineSchema), metadata={"description": "the invoice's lines"})
    subtotal = Amount()
    tax = Amount()
    total = Amount()


class PredictionSchema(Schema):
    account_id = fields.String()
    currency = fields.String()
    period_start = UtcDateTime()
    period_end = UtcDateTime()
    as_of = UtcDateTime()
    usage_so_far = Amount()
    charges_so_far = Amount()
    amount_so_far = Amount()
    subscription_renewals = Amount(metadata={"description": "renewals due in the cycle, at current prices"})
    estimated_subtotal = Amount()
    estimated_tax = Amount()
    estimated_total = Amount()
    method = fields.String()
