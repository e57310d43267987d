"""Gapless invoice numbers: one counter per issuer prefix and year.

The counter is saved in the same atomic write as the invoice that takes a number, so a
number exists only if its invoice does (no gaps) and two writers that took the same
number collide on the counter's version (no duplicates); the loser retries.
"""

from __future__ import annotations

from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from ledger_core.account import LEDGER_NAMESPACE
from ledger_core.errors import InvariantViolation
from ledger_core.invoicing import invoice_number


def invoice_numbers_uuid(prefix: str, year: int) -> UUID:
    return uuid5(LEDGER_NAMESPACE, f"invoice-numbers/{prefix}/{year}")


class InvoiceNumbers(Aggregate):
    @staticmethod
    def create_id(prefix: str, year: int) -> UUID:
        return invoice_numbers_uuid(prefix, year)

    @event("Started")
    def __init__(self, prefix: str, year: int) -> None:
        self.prefix = prefix
        self.year = year
        self.last = 0

    def take(self) -> str:
        self._taken(sequence=self.last + 1)
        return invoice_number(self.prefix, self.year, self.last)

    @event("Taken")
    def _taken(self, sequence: int) -> None:
        if sequence != self.last + 1:
            raise InvariantViolation(f"numbers are taken one after the other: {sequence} after {self.last}")
        self.last = sequence
