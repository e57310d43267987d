"""What a read-model view keeps from one of its batches to the next: the account rows and
the bills that batch used, as it wrote them.

They are current at the position the batch left, and stay current past other writers'
batches that changed other accounts only (``moved``; the projector reads from the log
which accounts those were). Without that, every batch read its accounts and bills back:
with two Kafka consumers on their own partitions the position moves with each batch of
the other, and those reads took 15% of a consumer's CPU (py-spy).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from projections.bills import BillRow
from projections.rows import AccountRow

KEPT_ACCOUNT_ROWS = 10_000  # account rows kept from one batch to the next, by default
BILLS_PER_KEPT_ACCOUNT = 4  # on average: beyond that many bills in all, accounts leave


@dataclass
class Kept:
    """Rows current at ``position`` in the tables ``identity`` names (a rebuild's swap changes it)."""

    position: int
    identity: Any
    rows: dict[str, AccountRow] = field(default_factory=dict)  # by aggregate id's text, least recently used first
    bills: dict[str, list[BillRow]] = field(default_factory=dict)  # by aggregate id's text: the bills its batch used

    def take(self, keys: Iterable[str]) -> tuple[dict[str, AccountRow], list[BillRow]]:
        """The rows and bills of these accounts, out of the cache (a batch changes them in place)."""
        rows = {key: self.rows.pop(key) for key in keys if key in self.rows}
        bills = [bill for key in rows for bill in self.bills.pop(key, ())]
        return rows, bills

    def put(self, rows: dict[str, AccountRow], bills: Iterable[BillRow]) -> None:
        """A batch's rows, most recently used last, each account with the bills the batch used."""
        self.rows.update(rows)
        key_of = {row.account_id: key for key, row in rows.items()}
        for bill in bills:
            key = key_of.get(bill.account_id)
            if key is not None:
                self.bills.setdefault(key, []).append(bill)

    def forget(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.rows.pop(key, None)
            self.bills.pop(key, None)

    def bound(self, max_rows: int) -> None:
        bills = sum(map(len, self.bills.values()))
        while self.rows and (len(self.rows) > max_rows or bills > max_rows * BILLS_PER_KEPT_ACCOUNT):
            key = next(iter(self.rows))
            del self.rows[key]
            bills -= len(self.bills.pop(key, ()))


class KeptRows:
    """The cache a view's batches share; one batch at a time takes it whole."""

    def __init__(self, max_rows: int = KEPT_ACCOUNT_ROWS) -> None:
        self.max_rows = max_rows  # a bound on the process's memory (Settings.warm_accounts)
        self._kept: Kept | None = None

    @property
    def position(self) -> int | None:
        return None if self._kept is None else self._kept.position

    def holds_any(self, keys: Iterable[str]) -> bool:
        rows = {} if self._kept is None else self._kept.rows
        return any(key in rows for key in keys)

    def take(self, position: int) -> Kept | None:
        """The whole cache if it is current at ``position``; the cache is empty meanwhile,
        so a batch that fails (its rows changed in memory, not written) returns nothing."""
        kept, self._kept = self._kept, None
        return kept if kept is not None and kept.position == position else None

    def keep(self, kept: Kept) -> None:
        kept.bound(self.max_rows)
        self._kept = kept

    def moved(self, since: int, position: int, changed: Collection[str] | None) -> None:
        """Other writers' batches took the position from ``since`` (the cache's) to
        ``position``, changing the rows of the accounts ``changed`` (aggregate ids' text;
        None: any). A cache kept at another position meanwhile is dropped."""
        kept = self._kept
        if kept is None:
            return
        if changed is None or kept.position != since or position < since:
            self._kept = None
            return
        kept.forget(changed)
        kept.position = position
