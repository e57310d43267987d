"""Rows of aggregates other than accounts that one batch touches (subscriptions, orders)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar


class KeyedRow(Protocol):
    aggregate_id: str


Row = TypeVar("Row", bound=KeyedRow)


class RowChanges(Generic[Row]):
    """By the aggregate's id (later events name only that): read on first use (outside the
    write lock, like every batch read), changed in memory, written back whole at flush."""

    def __init__(self, read_one: Callable[[str], Row | None]) -> None:
        self._read_one = read_one
        self._rows: dict[str, Row] = {}
        self._changed: set[str] = set()

    def get(self, aggregate_id: str) -> Row | None:
        if aggregate_id not in self._rows:
            row = self._read_one(aggregate_id)
            if row is None:
                return None
            self._rows[aggregate_id] = row
        return self._rows[aggregate_id]

    def put(self, row: Row) -> None:
        self._rows[row.aggregate_id] = row
        self._changed.add(row.aggregate_id)

    def flush(self, upsert: str, params: Callable[[Row], tuple[Any, ...]], cursor: Any) -> None:
        if self._changed:
            cursor.executemany(upsert, [params(self._rows[a]) for a in sorted(self._changed)])
