"""The two databases' differences: times go in as UTC, whatever their offset, and one
without an offset is taken as UTC (never the server's zone or the machine's)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from persistence.dialect import POSTGRES, SQLITE

NAIVE = datetime(2026, 12, 4, 23, 30, 0, 123456)
EAST = timezone(timedelta(hours=8))


def test_a_time_without_an_offset_is_utc_in_both_databases():
    assert POSTGRES.time_in(NAIVE) == NAIVE.replace(tzinfo=timezone.utc)
    assert POSTGRES.time_in(NAIVE).tzinfo is not None  # binary COPY writes only times with an offset
    assert SQLITE.time_in(NAIVE) == "2026-12-04T23:30:00.123456+00:00"


def test_a_time_with_an_offset_keeps_its_moment():
    moment = datetime(2026, 12, 5, 7, 30, 0, 123456, tzinfo=EAST)
    assert POSTGRES.time_in(moment) == moment
    assert SQLITE.time_in(moment) == "2026-12-04T23:30:00.123456+00:00"
    assert POSTGRES.time_in(None) is None and SQLITE.time_in(None) is None
