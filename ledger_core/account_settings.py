"""The rules of an account's settings: each checked and normalised the same way when the
account is opened and when it is changed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ledger_core.errors import InvalidInput
from ledger_core.figures import ZERO
from ledger_core.invoicing import MAX_PAYMENT_TERMS_DAYS
from ledger_core.money import parse_amount

MAX_TAX_RATE = Decimal(1)


def parse_tax_rate(value: object) -> Decimal:
    rate = parse_amount(value, field="tax_rate")
    if not ZERO <= rate < MAX_TAX_RATE:
        raise InvalidInput("tax_rate must be a fraction from 0 up to 1 (0.09 = 9%)", field="tax_rate")
    return rate


def parse_choice(kind: type[Any], value: object, field: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidInput(f"{field} must be one of {allowed}", field=field) from None


def parse_anchor_day(day: object) -> int:
    if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 31:
        raise InvalidInput("cycle_anchor_day must be 1..31", field="cycle_anchor_day")
    return day


def parse_terms(days: object) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= MAX_PAYMENT_TERMS_DAYS:
        raise InvalidInput(f"payment_terms_days must be 0..{MAX_PAYMENT_TERMS_DAYS}", field="payment_terms_days")
    return days


def parse_low_balance_threshold(value: object) -> Decimal | None:
    if value is None:
        return None
    threshold = parse_amount(value, field="low_balance_threshold")
    if threshold < 0:
        raise InvalidInput("low_balance_threshold must not be negative", field="low_balance_threshold")
    return threshold


def parse_credit_limit(value: object) -> Decimal:
    limit = parse_amount(value, field="credit_limit")
    if limit < 0:
        raise InvalidInput("credit_limit must not be negative", field="credit_limit")
    return limit
