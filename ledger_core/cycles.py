"""Monthly billing cycles: where they start and end, in the account's time zone.

A cycle starts at local midnight of the anchor day and ends where the next one starts.
An anchor day past a month's end (29, 30, 31) falls on that month's last day, so every
month has exactly one boundary. Boundaries are returned in UTC.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledger_core.errors import InvalidInput


def parse_time_zone(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidInput("time_zone must be an IANA time zone name such as Asia/Singapore", field="time_zone")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name!r}", field="time_zone") from None
    return name


def local_date(moment: datetime, time_zone: str) -> date:
    return moment.astimezone(ZoneInfo(time_zone)).date()


def local_days(start: datetime, end: datetime, time_zone: str) -> tuple[date, date]:
    """The days a period covers in the time zone: its first and its last, inclusive. A period
    ends where the next one starts (``end`` is exclusive): a period ending at local midnight
    ends on the day before, one ending at 10:00 includes that morning's day. The one rule
    for every document, export, e-mail and API field that shows a period."""
    first = local_date(start, time_zone)
    if end <= start:
        return first, first
    return first, max(first, local_date(end - timedelta(microseconds=1), time_zone))


def local_midnight(day: date, time_zone: str) -> datetime:
    """The moment ``day`` starts in the time zone, in UTC."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(time_zone)).astimezone(timezone.utc)


def _boundary(year: int, month: int, anchor_day: int, time_zone: str) -> datetime:
    return local_midnight(date(year, month, min(anchor_day, calendar.monthrange(year, month)[1])), time_zone)


def _month_before(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def _month_after(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def cycle_start(moment: datetime, anchor_day: int, time_zone: str) -> datetime:
    """The start of the cycle that contains ``moment``."""
    local = moment.astimezone(ZoneInfo(time_zone))
    boundary = _boundary(local.year, local.month, anchor_day, time_zone)
    if boundary <= moment:
        return boundary
    return _boundary(*_month_before(local.year, local.month), anchor_day, time_zone)


def next_boundary(start: datetime, anchor_day: int, time_zone: str) -> datetime:
    """The first cycle boundary after ``start``: where the cycle starting at ``start`` ends."""
    local = start.astimezone(ZoneInfo(time_zone))
    boundary = _boundary(local.year, local.month, anchor_day, time_zone)
    if boundary > start:
        return boundary
    return _boundary(*_month_after(local.year, local.month), anchor_day, time_zone)


def periods_ended(closed_through: datetime, anchor_day: int, time_zone: str, now: datetime,
                  limit: int) -> list[tuple[datetime, datetime]]:
    """The cycles after ``closed_through`` that ended by ``now``, oldest first, at most ``limit``."""
    periods: list[tuple[datetime, datetime]] = []
    start = closed_through
    while len(periods) < limit:
        end = next_boundary(start, anchor_day, time_zone)
        if end > now:
            break
        periods.append((start, end))
        start = end
    return periods
