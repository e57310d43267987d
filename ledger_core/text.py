"""Which characters text in the ledger may hold.

Stored text ends up in PostgreSQL (which refuses NUL in text), XML inside .xlsx files
(which refuses most control characters), PDFs, CSV and e-mail. So the ledger refuses,
at every edge and once more before anything is stored: NUL and the other C0 controls
(tab, line feed and carriage return only in free text), DEL, the C1 controls, and lone
surrogates (half of a UTF-16 pair, which no UTF-8 encoder accepts)."""

from __future__ import annotations

import re

from ledger_core.errors import CardNumberRefused

_UNSAFE_FREE_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_UNSAFE_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def unsafe_character(text: str, *, one_line: bool = True) -> str | None:
    """A description of the first character ``text`` may not hold, or None if it is clean."""
    if text.isascii() and text.isprintable():  # U+0020..U+007E only: the usual text, at C speed
        return None
    found = (_UNSAFE_ONE_LINE if one_line else _UNSAFE_FREE_TEXT).search(text)
    if found is None:
        return None
    char = found.group()
    kind = "a lone surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
    return f"{kind} (U+{ord(char):04X}) at position {found.start()}"


# A run of 13-19 digits, maybe grouped by single spaces or dashes, with no digit right before or after.
_DIGIT_RUN = re.compile(r"(?<![\d])\d(?:[ -]?\d){12,18}(?![ -]?\d)")


def card_number_in(text: str) -> bool:
    """Whether ``text`` holds what looks like a payment card number: 13-19 digits (spaces or
    dashes between groups allowed) that pass the Luhn check. The ledger stores a provider's
    token and the last four digits, never a card number, so such a text is refused."""
    return any(_luhn([int(c) for c in found.group() if c.isdigit()]) for found in _DIGIT_RUN.finditer(text))


def refuse_card_numbers(value: object, field: str) -> None:
    """Raises CardNumberRefused if any text in ``value`` (a text, or a dict or list of them,
    nested) looks like a payment card number."""
    if isinstance(value, str):
        if card_number_in(value):
            raise CardNumberRefused(f"{field} holds what looks like a payment card number (13-19 digits passing "
                                    "the Luhn check); store the provider's token and the last four digits instead",
                                    field=field)
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_card_numbers(item, f"{field}.{key}")
    elif isinstance(value, (list, tuple)):
        for item in value:
            refuse_card_numbers(item, field)


def _luhn(digits: list[int]) -> bool:
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0
