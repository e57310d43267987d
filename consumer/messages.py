"""The usage message other services post on Kafka, and its validation.

    {"event_id", "type": "usage"|"reserve"|"settle"|"release"|"power", "account_id", "product",
     "application_id", "application_name", "app_key", "channel_account", "quantity", "unit",
     "amount" | "unit_price",
     "reservation_id", "expires_at", "reason", "occurred_at", "currency",
     "order_id", "state": "on"|"off", "schema_version": 1}

A power message reports a cloud phone's power-up or power-down (its order's running fee,
ledger_core/order.py); ``occurred_at`` is when it happened, ``event_id`` makes a repeat harmless.

Amounts are positive costs as decimal strings (JSON numbers are read exactly, as Decimal).
The fields are the HTTP API's (service/wire.py); unknown fields are refused.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from ledger_core.account import ACCOUNT_ID_PATTERN, RELEASE_REASONS
from ledger_core.client_key import MAX_KEY_LENGTH
from ledger_core.money import parse_amount, parse_quantity, parse_unit_price
from ledger_core.order import ORDER_ID_PATTERN
from ledger_core.text import unsafe_character
from service.wire import Amount, BadJson, Text, UnitPrice, UsageLineSchema, UtcDateTime, load_json

SCHEMA_VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024
MESSAGE_TYPES = ("usage", "reserve", "settle", "release", "power")
AMOUNT_FIELDS = frozenset({"amount", "unit_price", "quantity"})
REQUIRED_BY_TYPE = {
    "usage": ("product",),
    "reserve": ("reservation_id", "amount"),
    "settle": ("reservation_id", "amount", "product"),
    "release": ("reservation_id",),
    "power": ("order_id", "state"),
}


class BadMessage(Exception):
    """A message that cannot be applied as it is: it goes to the dead-letter topic."""

    def __init__(self, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.reason, self.message, self.details = reason, message, details or {}


def _key(**kwargs: Any) -> fields.String:
    return Text(MAX_KEY_LENGTH, min_length=1, **kwargs)


class UsageMessageSchema(UsageLineSchema):
    event_id = _key(required=True)
    type = fields.String(required=True, validate=validate.OneOf(MESSAGE_TYPES))
    account_id = fields.String(required=True, validate=validate.Regexp(ACCOUNT_ID_PATTERN))
    schema_version = fields.Integer(required=True, strict=True, validate=validate.Equal(SCHEMA_VERSION))
    product = Text(128, min_length=1)  # required by type (REQUIRED_BY_TYPE)
    amount = Amount()
    unit_price = UnitPrice()
    reservation_id = _key()
    expires_at = UtcDateTime(allow_none=True)
    reason = fields.String(validate=validate.OneOf(RELEASE_REASONS))
    occurred_at = UtcDateTime()
    currency = fields.String(validate=validate.Length(equal=3))
    order_id = fields.String(validate=validate.Regexp(ORDER_ID_PATTERN))
    state = fields.String(validate=validate.OneOf(("on", "off")))

    @validates_schema
    def _complete(self, data: dict[str, Any], **_: Any) -> None:
        missing = [f for f in REQUIRED_BY_TYPE.get(data.get("type", ""), ()) if f not in data]
        if missing:
            raise ValidationError({f: ["required for this type"] for f in missing})
        if data.get("type") == "usage":
            if ("amount" in data) == ("unit_price" in data):
                raise ValidationError("give exactly one of amount or unit_price", "amount")
            if "unit_price" in data and data.get("quantity") is None:
                raise ValidationError("unit_price needs a quantity", "quantity")


_SCHEMA = UsageMessageSchema()

# The fast path: the common fields checked in plain code, with the schema's own rules.
# Whatever it is unsure of (a wrong value, an unusual field) goes to the schema, which
# decides, and words any error, exactly as before.
# field: (min length, max length, null allowed), read off the schema's one-line Text fields
_TEXT = {name: (f.min_length, f.max_length, f.allow_none) for name, f in _SCHEMA.fields.items()
         if isinstance(f, Text) and not f.free_text}
_TEXT["currency"] = (3, 3, False)
_EXACT = {"amount": (parse_amount, False), "quantity": (parse_quantity, True), "unit_price": (parse_unit_price, False)}
_HEADER = ("event_id", "type", "account_id", "schema_version")


def _fast(document: dict[str, Any]) -> dict[str, Any] | None:
    """The validated message, or None when the schema must decide."""
    out: dict[str, Any] = {}
    for name, value in document.items():
        text = _TEXT.get(name)
        if text is not None:
            low, high, nullable = text
            if value is None and nullable:
                out[name] = None
            elif type(value) is str and low <= len(value) <= high and not unsafe_character(value):
                out[name] = value
            else:
                return None
            continue
        exact = _EXACT.get(name)
        if exact is not None:
            read, nullable = exact
            if value is None:
                if not nullable:
                    return None
                out[name] = None
                continue
            try:
                out[name] = read(value, field=name)
            except Exception:  # noqa: BLE001 - the schema words the error
                return None
            continue
        if name == "type":
            if type(value) is not str or value not in MESSAGE_TYPES:
                return None
        elif name == "account_id":
            if type(value) is not str or not ACCOUNT_ID_PATTERN.fullmatch(value):
                return None
        elif name == "schema_version":
            if type(value) is not int or value != SCHEMA_VERSION:
                return None
        else:
            field = _SCHEMA.fields.get(name)
            if field is None:
                return None
            try:
                value = field.deserialize(value, name, document)
            except ValidationError:
                return None
        out[name] = value
    if any(name not in out for name in _HEADER):
        return None
    if any(name not in out for name in REQUIRED_BY_TYPE[out["type"]]):
        return None
    if out["type"] == "usage":
        if ("amount" in out) == ("unit_price" in out) or ("unit_price" in out and out.get("quantity") is None):
            return None
    return out


def parse(value: bytes | None) -> dict[str, Any]:
    """The validated message, or BadMessage with a reason code for the dead-letter topic."""
    if value is None or len(value) > MAX_MESSAGE_BYTES:
        raise BadMessage("invalid_message", f"a message must be 1..{MAX_MESSAGE_BYTES} bytes of JSON")
    try:
        document = load_json(value.decode("utf-8"))
    except (UnicodeDecodeError, BadJson) as error:
        raise BadMessage("invalid_json", f"not JSON the ledger accepts: {error}") from None
    if not isinstance(document, dict):
        raise BadMessage("invalid_json", "the message must be a JSON object")
    fast = _fast(document)
    if fast is not None:
        return fast
    try:
        return _SCHEMA.load(document)
    except ValidationError as error:
        problems = error.normalized_messages()
        reason = "invalid_amount" if AMOUNT_FIELDS & set(problems) else "invalid_message"
        raise BadMessage(reason, "the message does not match schema version 1", {"fields": problems}) from None
