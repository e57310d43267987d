"""The JSON shape of ledger values (money, quantities, times): marshmallow fields shared by
the edges that speak JSON (the HTTP API and the Kafka consumer).

Amounts travel as decimal strings ("-1610.81544"); JSON numbers are accepted too, but
only because the request parser reads them as Decimal, never as float. Times are
ISO 8601 with an explicit offset on the way in, and UTC with a "Z" on the way out.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from marshmallow import ValidationError, fields

from ledger_core.errors import InvalidAmount
from ledger_core.money import (
    format_amount,
    parse_amount,
    parse_quantity,
    parse_unit_price,
)


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
        moment = super()._deserialize(value, attr, data, **kwargs)
        if moment.tzinfo is None:
            raise ValidationError("give a time zone offset, e.g. 2026-11-26T10:00:00Z")
        return moment.astimezone(timezone.utc)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return value.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


class AsOf(fields.Field):
    """A point in an account's history: a log position (digits) or an ISO 8601 time with offset."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> tuple[str, Any]:
        text = str(value).strip()
        if text.isdigit():
            return "position", int(text)
        return "time", UtcDateTime()._deserialize(text, attr, data, **kwargs)
