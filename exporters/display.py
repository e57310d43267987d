"""How amounts, quantities and dates read on a printed document."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

from ledger_core.currencies import MINOR_UNITS


def _places(number: Decimal) -> int:
    exponent = number.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def display_amount(amount: Decimal, currency: str) -> str:
    """The currency's minor unit, or more places when the stored value has them: a printed
    amount is always the exact stored value (0.000009 SGD is never shown as 0.00)."""
    places = max(MINOR_UNITS[currency], _places(amount))
    return f"{amount:,.{places}f}"


def display_money(amount: Decimal, currency: str) -> str:
    return f"{display_amount(amount, currency)} {currency}"


def display_quantity(quantity: Decimal | None) -> str:
    """Blank where the data holds no quantity (a charge): never a number it does not hold."""
    return "" if quantity is None else f"{quantity:,.{_places(quantity)}f}"


def display_rate(fraction: Decimal) -> str:
    """0.09 -> '9%', 0.075 -> '7.5%'."""
    percent = fraction * 100
    return f"{percent:.{_places(percent)}f}%"


def display_date(day: date | None) -> str:
    """A day as ISO text; a dash where there is none (an invoice not issued has no issue date)."""
    return "—" if day is None else day.isoformat()


def display_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
