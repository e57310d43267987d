"""Monthly billing cycles: where they start and end, in the account's time zone.

A cycle starts at local midnight of the anchor day and ends where the next one starts.
An anchor day past a month's end (29, 30, 31) falls on that month's last day, so every
month has exactly one boundary. Boundaries are returned in UTC.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledger_core.errors import InvalidInput, InvariantViolation


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


_MONTH = re.compile(r"(\d{4})-(\d{2})")
_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


@dataclass(frozen=True)
class Bound:
    """A filter's bound as people type it: a moment (a full time), or a month (``2026-11``)
    or a day (``2026-11-01``) that means local days of the account it is applied to.
    As a lower bound it takes its start; as an upper bound everything up to its end, so
    ``to=2026-11`` includes November 30 and ``to=2026-11-30T00:00:00Z`` excludes it."""

    moment: datetime | None = None
    first_day: date | None = None
    last_day: date | None = None

    @classmethod
    def of_days(cls, text: str) -> Bound | None:
        """The bound of a month or a day, or None if ``text`` names neither (InvalidInput
        if it looks like one but is no date)."""
        try:
            if day := _DAY.fullmatch(text):
                first = date(int(day[1]), int(day[2]), int(day[3]))
                return cls(first_day=first, last_day=first)
            if month := _MONTH.fullmatch(text):
                year, number = int(month[1]), int(month[2])
                first = date(year, number, 1)
                return cls(first_day=first, last_day=first.replace(day=calendar.monthrange(year, number)[1]))
        except ValueError:
            raise InvalidInput(f"{text!r} is no date") from None
        return None

    def __post_init__(self) -> None:
        days = self.first_day is not None and self.last_day is not None and self.first_day <= self.last_day
        if (self.moment is None) != days:
            raise InvariantViolation(f"a bound is a moment or a span of days, not {self}")

    def start(self, time_zone: str) -> datetime:
        if self.first_day is None:
            return self._moment
        return local_midnight(self.first_day, time_zone)

    def end(self, time_zone: str) -> datetime:
        """Exclusive: the moment after the bound's last day, or the moment itself."""
        if self.last_day is None:
            return self._moment
        return local_midnight(self.last_day + timedelta(days=1), time_zone)

    @property
    def _moment(self) -> datetime:
        if self.moment is None:
            raise InvariantViolation("a bound of days has no moment")
        return self.moment


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


def split_at_boundaries(start: datetime, end: datetime, anchor_day: int, time_zone: str,
                        limit: int) -> list[tuple[datetime, datetime]]:
    """``start``..``end`` cut where billing cycles begin: one stretch per cycle it touches
    (at most ``limit`` + 1, for the caller to refuse)."""
    parts, moment = [], start
    while moment < end and len(parts) <= limit:
        boundary = next_boundary(cycle_start(moment, anchor_day, time_zone), anchor_day, time_zone)
        parts.append((moment, min(boundary, end)))
        moment = min(boundary, end)
    return parts
