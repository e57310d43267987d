"""The only differences between the two databases the read models live in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from ledger_core.cycles import Bound


@dataclass(frozen=True)
class Dialect:
    param: str
    amount_type: str
    time_type: str
    text_amounts: bool  # SQLite has no exact decimal type: amounts are stored as text
    # After a text column in ORDER BY: the order of its bytes, which is Python's order of
    # str (code points), whatever the database's collation.
    bytewise: str = ""

    def amount_in(self, amount: Decimal | None) -> Any:
        if amount is None or not self.text_amounts:
            return amount
        return f"{amount:f}"

    def amount_out(self, value: Any) -> Decimal | None:
        return None if value is None else Decimal(value)

    def time_in(self, moment: datetime | None) -> Any:
        if moment is None:
            return None
        if moment.tzinfo is None:
            # The ledger's times are UTC: one without an offset (none is stored so) is taken
            # as UTC in both databases, not as the server's zone or the machine's. PostgreSQL's
            # binary COPY could not write it at all.
            moment = moment.replace(tzinfo=timezone.utc)
        if not self.text_amounts:
            return moment
        # One fixed UTC format so that text order is time order.
        return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")

    def time_out(self, value: Any) -> datetime | None:
        if value is None or isinstance(value, datetime):
            return value
        return datetime.fromisoformat(value)


POSTGRES = Dialect(param="%s", amount_type="NUMERIC(38, 6)", time_type="TIMESTAMPTZ", text_amounts=False,
                   bytewise=' COLLATE "C"')
SQLITE = Dialect(param="?", amount_type="TEXT", time_type="TEXT", text_amounts=True)


def sign_of(dialect: Dialect, column: str) -> str:
    """An expression whose sign is the amount column's: SQLite keeps amounts as text, which
    compares as text; a REAL of it has the right sign (used for signs only, never sums)."""
    return f"CAST({column} AS REAL)" if dialect.text_amounts else column


def json_field(dialect: Dialect, column: str, key: str) -> str:
    """The text of one key of a JSON object kept in a text column."""
    if dialect.text_amounts:
        return f"COALESCE(json_extract({column}, '$.{key}'), '')"
    return f"COALESCE(({column}::jsonb ->> '{key}'), '')"


def lower_bound(dialect: Dialect, bound: Bound | None, by_moment: str, by_day: str) -> list[tuple[str, Any]]:
    """The condition of a filter's lower bound: on the UTC column for a moment, on the
    column of ISO local days for a day or month (the account's days, whatever its zone)."""
    if bound is None:
        return []
    if bound.first_day is None:
        return [(by_moment, dialect.time_in(bound.moment))]
    return [(by_day, bound.first_day.isoformat())]


def upper_bound(dialect: Dialect, bound: Bound | None, by_moment: str, by_day: str) -> list[tuple[str, Any]]:
    """As lower_bound, with the bound's last day."""
    if bound is None:
        return []
    if bound.last_day is None:
        return [(by_moment, dialect.time_in(bound.moment))]
    return [(by_day, bound.last_day.isoformat())]
