"""What the pages' forms share: the key each form is drawn with (a repeat of the form lands
once), and a refused write's message put beside the field that caused it."""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from ledger_core.errors import InvalidInput, LedgerError

WHOLE_FORM = "_form"


def form_key() -> str:
    """A new form's key: its write's idempotency key (or payment id)."""
    return secrets.token_hex(12)


def form_errors(error: LedgerError, fields: Iterable[str]) -> dict[str, str]:
    """{field: message} for the form's fields the error names, else the message for the whole form."""
    named = set(error.details.get("fields", {}) or {}) | ({error.details["field"]} if "field" in error.details else set())
    shown = {name: error.message for name in fields if name in named}
    return shown or {WHOLE_FORM: error.message}


def whole_number(text: str | None, field: str, low: int, high: int) -> int | None:
    """A form's whole number, None when left empty; anything else is refused beside its field."""
    value = (text or "").strip()
    if not value:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > len(str(high)) or not low <= int(value) <= high:
        raise InvalidInput(f"a whole number from {low} to {high}", field=field)
    return int(value)
