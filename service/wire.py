"""The JSON shape of ledger values (money, quantities, times): marshmallow fields shared by
the edges that speak JSON (the HTTP API and the Kafka consumer).

Amounts travel as decimal strings ("-1610.81544"); JSON numbers are accepted too, but
only because the request parser reads them as Decimal, never as float. Times are
ISO 8601 with an explicit offset on the way in, and UTC with a "Z" on the way out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from ledger_core.cycles import Bound
from ledger_core.errors import InvalidAmount, InvalidInput
from ledger_core.money import (
    format_amount,
    parse_amount,
    parse_quantity,
    parse_unit_price,
)
from ledger_core.text import unsafe_character

MAX_JSON_DEPTH = 32
MAX_JSON_INT_DIGITS = 40
# Times the ledger accepts: wide enough for any real booking or expiry, narrow enough that
# every offset converts to UTC and every cycle computed from them stays inside datetime.
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)


class BadJson(ValueError):
    """A body or message that is not the JSON the ledger accepts; the text says why."""

    code = "invalid_json"


class UnsafeJsonText(BadJson):
    """Valid JSON, but a string in it holds a character the ledger refuses."""

    code = "invalid_text"


# The HTTP status of each error category, for both HTTP edges (the API and the console).
STATUS_BY_CATEGORY = {"invalid": 400, "unauthenticated": 401, "forbidden": 403, "not_found": 404,
                      "conflict": 409, "rule": 422, "rate_limited": 429, "internal": 500,
                      "unavailable": 503}

def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise BadJson(f"the key {twice!r} appears twice in one object")
    return document


def _exact_number(text: str) -> Decimal:
    if "e" in text or "E" in text:
        raise BadJson(f"numbers with exponents are not accepted: {text[:40]}")
    return Decimal(text)


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_INT_DIGITS:
        raise BadJson(f"a number has more than {MAX_JSON_INT_DIGITS} digits")
    return int(text)


def _refuse_constant(name: str) -> Any:
    raise BadJson(f"{name} is not a number the ledger accepts")


_SCALARS = frozenset({int, bool, Decimal, type(None)})  # what json.loads gives here besides text and containers


def _checked(value: Any, depth: int = 0) -> None:
    """Every string (keys too) is safe text, and no container at the deepest level has
    members. Members that are text or numbers are checked here, without a call each."""
    kind = type(value)
    if kind is str:
        _text_checked(value)
        return
    if kind is dict:
        members: Iterable[Any] = value.values()
    elif kind is list:
        members = value
    else:
        return
    if value and depth >= MAX_JSON_DEPTH:  # its members would stand one level deeper
        raise BadJson(f"nested deeper than {MAX_JSON_DEPTH} levels")
    # Printable ASCII, the usual text, passes at C speed without a call (as in unsafe_character).
    if kind is dict:
        for key in value:
            if not (key.isascii() and key.isprintable()):
                _text_checked(key)
    for item in members:
        if type(item) is str:
            if not (item.isascii() and item.isprintable()):
                _text_checked(item)
        elif type(item) not in _SCALARS:
            _checked(item, depth + 1)


def _text_checked(text: str) -> None:
    problem = unsafe_character(text, one_line=False)
    if problem:
        raise UnsafeJsonText(f"a string holds {problem}")


def load_json(text: str) -> Any:
    """Strict JSON for the ledger's edges: numbers exact (Decimal, no exponents, bounded
    digits), no NaN or Infinity, no key twice in an object, at most 32 levels deep, and no
    string with NUL, another control character but tab and line breaks, or a lone surrogate."""
    try:
        document = json.loads(text, parse_float=_exact_number, parse_int=_bounded_int,
                              parse_constant=_refuse_constant, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise BadJson(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    except BadJson:
        raise
    except ValueError as error:  # json.JSONDecodeError included
        raise BadJson(str(error)) from None
    _checked(document)
    return document


class Text(fields.String):
    """A string without control characters (but tab and line breaks where ``free_text``)
    or lone surrogates, of bounded length."""

    def __init__(self, max_length: int, *, min_length: int = 0, free_text: bool = False, **kwargs: Any) -> None:
        validators = [validate.Length(min=min_length or None, max=max_length), *kwargs.pop("validate", [])]
        super().__init__(validate=validators, **kwargs)
        self.min_length, self.max_length, self.free_text = min_length, max_length, free_text

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text: str = super()._deserialize(value, attr, data, **kwargs)
        problem = unsafe_character(text, one_line=not self.free_text)
        if problem:
            raise ValidationError(f"holds {problem}")
        return text


class _Exact(fields.Field):
    parse: Any = staticmethod(parse_amount)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        try:
            return self.parse(value, field=attr or "amount")
        except InvalidAmount as error:
            raise ValidationError(error.message) from None

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else format_amount(value)


class Amount(_Exact):
    """At most 6 decimal places, below 10^15 in size."""


class Quantity(_Exact):
    parse = staticmethod(parse_quantity)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else f"{value.normalize():f}"


class UnitPrice(Quantity):
    parse = staticmethod(parse_unit_price)


class UtcDateTime(fields.DateTime):
    """ISO 8601; input must carry an offset, output is UTC with a 'Z'."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if isinstance(value, str) and unsafe_character(value):
            raise ValidationError("not a time: it holds a control character")
        moment = super()._deserialize(value, attr, data, **kwargs)
        if moment.tzinfo is None:
            raise ValidationError("give a time zone offset, e.g. 2026-11-26T10:00:00Z")
        try:
            utc = moment.astimezone(timezone.utc)
        except OverflowError:
            utc = None
        if utc is None or not EARLIEST <= utc < LATEST:
            raise ValidationError(f"must lie from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d} (UTC)")
        return utc

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return value.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


class DayOrTime(UtcDateTime):
    """A filter bound as people type it: ``2026-11`` (a month), ``2026-11-01`` (a day), both
    meaning the account's local days, or a full time with an offset (ledger_core/cycles.py Bound)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Bound:
        text = value.strip() if isinstance(value, str) else value
        if isinstance(text, str):
            try:
                days = Bound.of_days(text)
            except InvalidInput as error:
                raise ValidationError(error.message) from None
            if days is not None:
                if not EARLIEST.date() <= days.first_day <= days.last_day < LATEST.date():  # type: ignore[operator]
                    raise ValidationError(f"must lie from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d}")
                return days
        return Bound(moment=super()._deserialize(value, attr, data, **kwargs))


class AsOf(fields.Field):
    """A point in an account's history: a log position (digits) or an ISO 8601 time with offset."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> tuple[str, Any]:
        text = str(value).strip()
        if text.isascii() and text.isdigit():
            if len(text) > 18:
                raise ValidationError("a log position has at most 18 digits")
            return "position", int(text)
        return "time", UtcDateTime()._deserialize(text, attr, data, **kwargs)


class UsageLineSchema(Schema):
    """What was used (ledger_core/usage.py UsageLine): the fields of a usage record and a
    settled hold, over HTTP and on Kafka alike."""

    product = Text(128, min_length=1, required=True)
    application_id = Text(128, allow_none=True)
    application_name = Text(128, allow_none=True)
    app_key = Text(128, allow_none=True)
    channel_account = Text(128, allow_none=True, metadata={"description": "e.g. a WhatsApp Business Account id"})
    quantity = Quantity(allow_none=True)
    unit = Text(32, allow_none=True)
