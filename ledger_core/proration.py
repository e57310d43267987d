"""Subscription periods and per-day proration (no state).

A subscription's period runs from its start day to the same day of the next month (or
year), in local days of the account; a day past a month's end falls on its last day, as
billing cycles do. Whoever is subscribed to an item for some days of a period pays

    price x active days / days in the period

rounded once, ROUND_HALF_EVEN to 6 places: the money model's one rounding, applied where a
price meets a quantity (here, a number of days). An item is charged when it starts (for the
rest of the period) and credited when it stops early with the difference between that
charge and the amount of the days it was active, so what it costs over the period is that
one rounded amount, whatever happened in between.
"""

from __future__ import annotations

import calendar
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from ledger_core.errors import InvariantViolation
from ledger_core.money import AMOUNT_QUANTUM

MAX_PERIODS_PER_RENEWAL = 36  # a subscription renewed years late catches up in a few calls


def _on_day(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def next_period_start(start: date, period: str, anchor_day: int) -> date:
    """The day the period that starts on ``start`` ends (exclusive): the anchor day of the
    next month (monthly) or of the same month next year (yearly)."""
    if period == "yearly":
        return _on_day(start.year + 1, start.month, anchor_day)
    if period == "monthly":
        year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
        return _on_day(year, month, anchor_day)
    raise InvariantViolation(f"no period {period!r}")


def prorated(price: Decimal, active_days: int, period_days: int) -> Decimal:
    """What ``active_days`` of a period of ``period_days`` days cost at ``price`` a period."""
    if not 0 <= active_days <= period_days or period_days <= 0:
        raise InvariantViolation(f"{active_days} active days of a {period_days}-day period")
    return (price * active_days / period_days).quantize(AMOUNT_QUANTUM, rounding=ROUND_HALF_EVEN) + 0
