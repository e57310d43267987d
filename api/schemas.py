"""Request and response shapes. Unknown fields are rejected (marshmallow's RAISE default)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ledger_core.account import (
    ACCOUNT_EVENT_TYPES,
    ACCOUNT_ID_PATTERN,
    CHARGE_KINDS,
    RELEASE_REASONS,
)
from ledger_core.client_key import MAX_KEY_LENGTH
from ledger_core.currencies import MINOR_UNITS
from ledger_core.figures import ZERO, BillingMode, InvoiceMode, UsagePolicy
from ledger_core.invoicing import DEFAULT_PAYMENT_TERMS_DAYS, MAX_PAYMENT_TERMS_DAYS
from ledger_core.test_clocks import TEST_CLOCK_ID_PATTERN
from projections.rows import MovementType
from projections.views import MAX_PAGE_ROWS
from service.wire import Amount, AsOf, DayOrTime, Quantity, Text, UnitPrice, UsageLineSchema, UtcDateTime

DEFAULT_PAGE_ROWS = 50
LOW_BALANCE_HELP = {"description": "LowBalance on ledger.events when usable credits fall below it; null = off"}
MAX_EMAILS = 10


def text_field(max_length: int, **kwargs: Any) -> fields.String:
    """One line of text (no control characters); ``free_text=True`` allows tabs and line breaks."""
    return Text(max_length, **kwargs)


def key_field(**kwargs: Any) -> fields.String:
    return Text(MAX_KEY_LENGTH, min_length=1, **kwargs)


class Choice(fields.String):
    """One of a few values, matched without regard to case ("pending", "PENDING" and
    "Pending" are the bill status Pending), and passed on in its one canonical spelling."""

    def __init__(self, values: Any, **kwargs: Any) -> None:
        self.canonical = {str(v).lower(): str(v) for v in values}
        super().__init__(validate=validate.OneOf(list(self.canonical.values())), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text: str = super()._deserialize(value, attr, data, **kwargs)
        return self.canonical.get(text.lower(), text)


def choice_field(values: Any, **kwargs: Any) -> fields.String:
    return Choice(values, **kwargs)


# -- requests ------------------------------------------------------------------------
class PayerSchema(Schema):
    name = text_field(200)
    organization = text_field(200)
    tax_id = text_field(64)
    address = text_field(500, free_text=True)
    emails = fields.List(fields.Email(validate=validate.Length(max=254)), validate=validate.Length(max=MAX_EMAILS))


class OpenAccountSchema(Schema):
    account_id = fields.String(required=True, validate=validate.Regexp(ACCOUNT_ID_PATTERN))
    billing_mode = choice_field(BillingMode, load_default=BillingMode.PREPAID.value,
                                metadata={"description": "prepaid when left out, as self-signup opens accounts"})
    invoice_mode = choice_field(InvoiceMode, required=True)
    currency = choice_field(sorted(MINOR_UNITS), required=True)
    credit_limit = Amount(load_default=ZERO)
    usage_policy = choice_field(UsagePolicy, load_default=UsagePolicy.ALLOW_OVERDRAFT.value)
    cycle_anchor_day = fields.Integer(load_default=1, strict=True, validate=validate.Range(1, 31))
    tax_rate = Amount(load_default=ZERO)
    payer = fields.Nested(PayerSchema, load_default=dict)
    time_zone = text_field(64, load_default="UTC", metadata={"description": "IANA name; cycles start at local midnight"})
    payment_terms_days = fields.Integer(load_default=DEFAULT_PAYMENT_TERMS_DAYS, strict=True,
                                        validate=validate.Range(0, MAX_PAYMENT_TERMS_DAYS))
    drafts_need_approval = fields.Boolean(metadata={"description": "default: true for postpaid, false for prepaid"})
    low_balance_threshold = Amount(allow_none=True, metadata=LOW_BALANCE_HELP)
    test_clock_id = fields.String(validate=validate.Regexp(TEST_CLOCK_ID_PATTERN), metadata={
        "description": "open the account on this test clock (POST /v1/test-clocks): its time is the account's "
                       "now, for good"})


class UpdateAccountSchema(Schema):
    credit_limit = Amount()
    billing_mode = choice_field(BillingMode, metadata={
        "description": "prepaid <-> postpaid: no money moves; usable credits and overdraft follow the new "
                       "formula (docs/money.md); a prepaid account in overdraft settles it first"})
    invoice_mode = choice_field(InvoiceMode)
    usage_policy = choice_field(UsagePolicy)
    tax_rate = Amount()
    payer = fields.Nested(PayerSchema)
    # recurring invoice settings
    cycle_running = fields.Boolean(metadata={"description": "false stops the billing cycle, true restarts it"})
    cycle_anchor_day = fields.Integer(strict=True, validate=validate.Range(1, 31))
    payment_terms_days = fields.Integer(strict=True, validate=validate.Range(0, MAX_PAYMENT_TERMS_DAYS))
    drafts_need_approval = fields.Boolean()
    time_zone = text_field(64)
    low_balance_threshold = Amount(allow_none=True, metadata=LOW_BALANCE_HELP)  # null turns it off

    @validates_schema
    def _something(self, data: dict[str, Any], **_: Any) -> None:
        if not data:
            raise ValidationError("give at least one setting to change")


IDEMPOTENCY_HELP = {"description": "or the Idempotency-Key header: a repeat returns the first result (200), "
                                    "the same key with another request is a 409"}


class RechargeSchema(Schema):
    idempotency_key = key_field(metadata=IDEMPOTENCY_HELP)
    amount = Amount(required=True)
    reference = text_field(128, load_default="")
    method = text_field(64, load_default="")
    currency = fields.String()
    purchaser_email = fields.Email(validate=validate.Length(max=254), metadata={
        "description": "who bought the credits: the receipt goes to them too, beside the billing contacts"})


class UsageSchema(UsageLineSchema):
    idempotency_key = key_field(metadata={**IDEMPOTENCY_HELP, "description": "required, here or as the Idempotency-Key "
                                     "header: " + IDEMPOTENCY_HELP["description"]})
    amount = Amount()
    unit_price = UnitPrice()
    occurred_at = UtcDateTime()
    currency = fields.String()

    @validates_schema
    def _priced_once(self, data: dict[str, Any], **_: Any) -> None:
        if ("amount" in data) == ("unit_price" in data):
            raise ValidationError("give exactly one of amount or unit_price", "amount")
        if "unit_price" in data and data.get("quantity") is None:
            raise ValidationError("unit_price needs a quantity", "quantity")


class ChargeSchema(Schema):
    idempotency_key = key_field(metadata={**IDEMPOTENCY_HELP, "description": "required, here or as the Idempotency-Key "
                                     "header: " + IDEMPOTENCY_HELP["description"]})
    kind = choice_field(CHARGE_KINDS, required=True)
    description = text_field(500, load_default="", free_text=True)
    amount = Amount(required=True)
    currency = fields.String()


class ReserveSchema(Schema):
    reservation_id = key_field(required=True)
    amount = Amount(required=True)
    expires_at = UtcDateTime(allow_none=True)
    currency = fields.String()


class SettleSchema(UsageLineSchema):
    amount = Amount(required=True)
    currency = fields.String()


class ReleaseSchema(Schema):
    reason = choice_field(RELEASE_REASONS, load_default="cancelled")


class AccountQuerySchema(Schema):
    q = text_field(128, metadata={"description": "in the account id or the payer's name, organization, e-mails"})
    billing_mode = choice_field(BillingMode)
    invoice_mode = choice_field(InvoiceMode)
    currency = choice_field(sorted(MINOR_UNITS))
    has_amount_due = fields.Boolean(metadata={"description": "true: owes on billed invoices (amount due below 0)"})
    in_overdraft = fields.Boolean()
    sort = choice_field(("account_id", "newest"), load_default="account_id")
    cursor = text_field(256)
    limit = fields.Integer(load_default=DEFAULT_PAGE_ROWS, validate=validate.Range(1, MAX_PAGE_ROWS))


class AsOfQuerySchema(Schema):
    as_of = AsOf(metadata={"description": "a log position, or an ISO 8601 time with offset"})


class TransactionQuerySchema(AsOfQuerySchema):
    type = choice_field(MovementType)
    product = text_field(128)
    application_id = text_field(128, metadata={"description": "one application's rows (a cloud phone's, say)"})
    from_ = DayOrTime(data_key="from", metadata={
        "description": "booked (by the ledger) at or after this time, or on or after this local day or month "
                       "(2026-11-01, 2026-11) of the account"})
    to = DayOrTime(metadata={"description": "booked before this time, or on or before the last local day of "
                                            "this day or month"})
    occurred_from = DayOrTime(metadata={"description": "as `from`, by when the usage happened (its occurred_at); "
                                                      "rows without usage carry their booking time"})
    occurred_to = DayOrTime(metadata={"description": "as `to`, by when the usage happened"})
    q = text_field(128, metadata={"description": "in the reference, product, application name or transaction no"})
    cursor = text_field(64)
    limit = fields.Integer(load_default=DEFAULT_PAGE_ROWS, validate=validate.Range(1, MAX_PAGE_ROWS))


class EventQuerySchema(Schema):
    type = choice_field(ACCOUNT_EVENT_TYPES)
    from_ = UtcDateTime(data_key="from")
    to = UtcDateTime()
    cursor = text_field(64)
    limit = fields.Integer(load_default=DEFAULT_PAGE_ROWS, validate=validate.Range(1, MAX_PAGE_ROWS))


# -- responses -----------------------------------------------------------------------
class BalanceSchema(Schema):
    account_id = fields.String()
    currency = fields.String()
    usable_credits = Amount()
    reserved_credits = Amount()
    expecting_invoice = Amount()
    amount_due = Amount()
    current_balance = Amount()
    credit_limit = Amount()
    overdraft = Amount()
    as_of = UtcDateTime()
    version = fields.Integer()


class AccountSchema(Schema):
    account_id = fields.String()
    currency = fields.String()
    billing_mode = fields.String()
    invoice_mode = fields.String()
    usage_policy = fields.String()
    credit_limit = Amount()
    cycle_anchor_day = fields.Integer()
    tax_rate = Amount()
    payer = fields.Nested(PayerSchema)
    time_zone = fields.String()
    payment_terms_days = fields.Integer()
    drafts_need_approval = fields.Boolean()
    cycle_running = fields.Boolean()
    test_clock_id = fields.String(allow_none=True, metadata={"description": "the test clock it runs on; null: real time"})
    opened_at = UtcDateTime()
    balance = fields.Nested(BalanceSchema)
    low_balance_threshold = Amount(allow_none=True)


class AccountPageSchema(Schema):
    items = fields.List(fields.Nested(AccountSchema))
    next_cursor = fields.String(allow_none=True)


class BookingSchema(Schema):
    transaction_no = fields.String(allow_none=True)
    amount = Amount(allow_none=True, metadata={"description": "signed as booked: + CR, - DR"})
    reservation_id = fields.String(allow_none=True)
    status = fields.String(allow_none=True)
    replayed = fields.Boolean()
    balance = fields.Nested(BalanceSchema)


class TransactionSchema(Schema):
    transaction_no = fields.String()
    time = UtcDateTime(attribute="booked_at")
    occurred_at = UtcDateTime()
    type = fields.String()
    item = fields.String()
    product = fields.String(allow_none=True)
    application_id = fields.String(allow_none=True)
    application_name = fields.String(allow_none=True)
    app_key = fields.String(allow_none=True)
    quantity = Quantity(allow_none=True)
    unit = fields.String(allow_none=True)
    unit_price = UnitPrice(allow_none=True)
    amount = Amount()
    balance_after = Amount()
    reference = fields.String()
    description = fields.String()


class TransactionPageSchema(Schema):
    items = fields.List(fields.Nested(TransactionSchema))
    next_cursor = fields.String(allow_none=True)


class HoldSchema(Schema):
    reservation_id = fields.String()
    amount = Amount()
    reserved_at = UtcDateTime()
    expires_at = UtcDateTime(allow_none=True)


class HoldListSchema(Schema):
    items = fields.List(fields.Nested(HoldSchema))


class HistoryItemSchema(Schema):
    position = fields.Integer()
    version = fields.Integer()
    type = fields.String()
    time = UtcDateTime()
    recorded_at = fields.String()
    cause = fields.Dict()
    link = fields.String(metadata={"description": "SHA-256 chain link, see ledger_core/audit.py"})
    payload = fields.Dict()


class HistoryPageSchema(Schema):
    items = fields.List(fields.Nested(HistoryItemSchema))
    next_cursor = fields.String(allow_none=True)
