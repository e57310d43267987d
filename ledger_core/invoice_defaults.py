"""The issuer's invoice wording: terms & conditions and customer notes that every invoice
issued afterwards prints unless its request gives its own.

One aggregate per deployment, in the same log as the accounts, so a change is audited
with the admin who made it. An invoice copies the wording when it is drafted: a later
change never rewrites an invoice already made.
"""

from __future__ import annotations

from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from ledger_core.account import LEDGER_NAMESPACE
from ledger_core.errors import InvalidInput, UnsafeText
from ledger_core.invoicing import MAX_WORDING_CHARS, Wording
from ledger_core.text import unsafe_character

INVOICE_DEFAULTS_ID = uuid5(LEDGER_NAMESPACE, "invoice-defaults")


def checked_wording(text: str, field: str) -> str:
    if len(text) > MAX_WORDING_CHARS:
        raise InvalidInput(f"{field} holds at most {MAX_WORDING_CHARS} characters", field=field)
    problem = unsafe_character(text, one_line=False)
    if problem is not None:
        raise UnsafeText(f"{field} holds {problem}", field=field)
    return text


class InvoiceDefaults(Aggregate):
    @staticmethod
    def create_id() -> UUID:
        return INVOICE_DEFAULTS_ID

    @event("Started")
    def __init__(self) -> None:
        self.terms = ""
        self.notes = ""

    @property
    def wording(self) -> Wording:
        return Wording(self.terms, self.notes)

    def change(self, terms: str | None = None, notes: str | None = None) -> None:
        """Sets the texts given (None keeps one); a change to the same texts records nothing."""
        terms = self.terms if terms is None else checked_wording(terms, "terms")
        notes = self.notes if notes is None else checked_wording(notes, "notes")
        if (terms, notes) != (self.terms, self.notes):
            self._changed(terms=terms, notes=notes)

    @event("Changed")
    def _changed(self, terms: str, notes: str) -> None:
        self.terms = terms
        self.notes = notes
