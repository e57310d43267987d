"""Exact money: every rounding and every amount rule of the ledger lives here.

Amounts are ``decimal.Decimal`` with at most 6 places. Rounding happens once, where a
unit price meets a quantity (ROUND_HALF_EVEN to 6 places); sums are exact after that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

from ledger_core.currencies import MINOR_UNITS
from ledger_core.errors import CurrencyMismatch, InvalidAmount, InvalidCurrency, InvariantViolation

AMOUNT_PLACES = 6
AMOUNT_QUANTUM = Decimal(1).scaleb(-AMOUNT_PLACES)  # 0.000001
# Limits on everything: no single amount, quantity or price may reach these.
MAX_AMOUNT = Decimal(10) ** 15  # exclusive; sums of many still fit NUMERIC(38, 6)
MAX_QUANTITY = Decimal(10) ** 12
UNIT_PRICE_PLACES = 12  # sub-micro prices exist (0.0000005 per byte); rounded when applied
DISPLAY_MIN_PLACES = 2

DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?", re.ASCII)
MAX_DECIMAL_TEXT = 40  # characters: far beyond any amount's, short enough to parse at once

# Enough digits that no product of a quantity and a price below the limits rounds early.
_WORKING_PRECISION = 60


def _to_decimal(value: object, field: str) -> Decimal:
    if type(value) is Decimal and value.is_finite():
        return value  # the usual case on the hot path: parsed once at the edge, checked again here
    # bool is an int subclass and float is never exact: both are refused outright.
    if isinstance(value, bool) or isinstance(value, float):
        raise InvalidAmount(f"{field} must be a decimal string, not {type(value).__name__}", field=field)
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, str):
        # One grammar, ASCII only: Decimal() alone would take " 5", "1_000", "1e3" and
        # Arabic-Indic digits, and book them.
        if len(value) > MAX_DECIMAL_TEXT or not DECIMAL_TEXT.fullmatch(value):
            raise InvalidAmount(f"{field} must be a plain decimal such as 12.50 (ASCII digits, an optional "
                                f"leading minus, a point; no spaces, exponents or separators): {value[:40]!r}",
                                field=field)
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise InvalidAmount(f"{field} is not a decimal number: {value[:40]!r}", field=field) from None
    else:
        raise InvalidAmount(f"{field} must be a decimal string", field=field)
    if not number.is_finite():
        raise InvalidAmount(f"{field} must be a finite number", field=field)
    return number


def _places(number: Decimal) -> int:
    """Decimal places as written (trailing zeros count)."""
    exponent = number.as_tuple().exponent
    if not isinstance(exponent, int):
        raise InvariantViolation(f"only finite numbers have decimal places: {number}")
    return max(0, -exponent)


def parse_decimal(value: object, *, field: str, places: int, limit: Decimal) -> Decimal:
    """A strict decimal: finite, at most ``places`` decimal places, ``abs() < limit``."""
    number = _to_decimal(value, field)
    # At most ``places`` written places needs no normalising; more may be trailing zeros.
    if _places(number) > places and _places(number.normalize()) > places:
        raise InvalidAmount(f"{field} has more than {places} decimal places: {value}", field=field)
    if abs(number) >= limit:
        raise InvalidAmount(f"{field} is out of range (must be below {limit:,})", field=field)
    return number


def parse_amount(value: object, *, field: str = "amount") -> Decimal:
    """An amount as stored: exact, at most 6 places, quantized to 6 places."""
    number = parse_decimal(value, field=field, places=AMOUNT_PLACES, limit=MAX_AMOUNT)
    return number.quantize(AMOUNT_QUANTUM) + 0  # "+ 0" turns -0 into 0


def parse_quantity(value: object, *, field: str = "quantity") -> Decimal:
    number = parse_decimal(value, field=field, places=AMOUNT_PLACES, limit=MAX_QUANTITY)
    if number <= 0:
        raise InvalidAmount(f"{field} must be positive", field=field)
    return number


def parse_unit_price(value: object, *, field: str = "unit_price") -> Decimal:
    number = parse_decimal(value, field=field, places=UNIT_PRICE_PLACES, limit=MAX_AMOUNT)
    if number < 0:
        raise InvalidAmount(f"{field} must not be negative", field=field)
    return number


def price(quantity: Decimal, unit_price: Decimal) -> Decimal:
    """The one place a price meets a quantity: ROUND_HALF_EVEN to 6 places."""
    with localcontext() as context:
        context.prec = _WORKING_PRECISION
        cost = (quantity * unit_price).quantize(AMOUNT_QUANTUM, rounding=ROUND_HALF_EVEN)
    if cost >= MAX_AMOUNT:
        raise InvalidAmount("quantity x unit_price is out of range", field="unit_price")
    return cost


def format_amount(amount: Decimal) -> str:
    """Exact text for JSON and documents: no exponent, trailing zeros dropped down to 2 places."""
    if not amount.is_finite():
        raise InvalidAmount(f"not a finite amount: {amount}")
    places = max(DISPLAY_MIN_PLACES, _places(amount.normalize()))
    return f"{amount:.{places}f}"


def parse_currency(code: object) -> str:
    if not isinstance(code, str) or code not in MINOR_UNITS:
        raise InvalidCurrency(f"not an ISO 4217 currency code: {code!r}", field="currency")
    return code


@dataclass(frozen=True)
class Money:
    """An amount in one currency. Arithmetic across currencies is refused."""

    amount: Decimal
    currency: str

    @classmethod
    def of(cls, amount: object, currency: str) -> Money:
        return cls(parse_amount(amount), parse_currency(currency))

    @classmethod
    def priced(cls, quantity: Decimal, unit_price: Decimal, currency: str) -> Money:
        return cls(price(quantity, unit_price), parse_currency(currency))

    def require_currency(self, currency: str) -> Money:
        if self.currency != currency:
            raise CurrencyMismatch(
                f"amount is in {self.currency} but the account is in {currency}",
                expected=currency,
                given=self.currency,
            )
        return self

    def __add__(self, other: Money) -> Money:
        other.require_currency(self.currency)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        other.require_currency(self.currency)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __str__(self) -> str:
        return f"{format_amount(self.amount)} {self.currency}"


def tax_on(subtotal: Decimal, rate: Decimal, currency: str) -> Decimal:
    """Tax of one invoice: rounded once, ROUND_HALF_UP to the currency's minor unit (the
    rule tax authorities print on invoices), then carried at the ledger's 6 places."""
    minor = Decimal(1).scaleb(-MINOR_UNITS[parse_currency(currency)])
    with localcontext() as context:
        context.prec = _WORKING_PRECISION
        return (subtotal * rate).quantize(minor, rounding=ROUND_HALF_UP).quantize(AMOUNT_QUANTUM)
