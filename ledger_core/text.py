"""Which characters text in the ledger may hold.

Stored text ends up in PostgreSQL (which refuses NUL in text), XML inside .xlsx files
(which refuses most control characters), PDFs, CSV and e-mail. So the ledger refuses,
at every edge and once more before anything is stored: NUL and the other C0 controls
(tab, line feed and carriage return only in free text), DEL, the C1 controls, and lone
surrogates (half of a UTF-16 pair, which no UTF-8 encoder accepts)."""

from __future__ import annotations

import re

_UNSAFE_FREE_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_UNSAFE_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def unsafe_character(text: str, *, one_line: bool = True) -> str | None:
    """A description of the first character ``text`` may not hold, or None if it is clean."""
    found = (_UNSAFE_ONE_LINE if one_line else _UNSAFE_FREE_TEXT).search(text)
    if found is None:
        return None
    char = found.group()
    kind = "a lone surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
    return f"{kind} (U+{ord(char):04X}) at position {found.start()}"
