"""Which values json.dumps and orjson write to the same bytes.

Where the ledger hashes JSON (audit links, idempotency fingerprints), the definition is
json.dumps and the bytes must never depend on which encoder wrote them: orjson, ten times
faster, is used only for values this admits (a float or a subclass may be written
differently)."""

from __future__ import annotations

from typing import Any

_SCALARS = frozenset({str, int, bool, type(None)})


def plain(value: Any, also: tuple[type, ...] = ()) -> bool:
    """Text, integers, booleans and None, and values of the exact types ``also`` (which
    both encoders hand to the same ``default``), in dicts with text keys and lists."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                return False
            if type(item) not in _SCALARS and not plain(item, also):  # scalars without a call: hashed per event
                return False
        return True
    if kind is list:
        return all(type(item) in _SCALARS or plain(item, also) for item in value)
    return kind in _SCALARS or kind in also
