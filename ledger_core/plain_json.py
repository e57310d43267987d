"""Which values json.dumps and orjson write to the same bytes.

Where the ledger hashes JSON (audit links, idempotency fingerprints), the definition is
json.dumps and the bytes must never depend on which encoder wrote them: orjson, ten times
faster, is used only for values this admits (a float or a subclass may be written
differently)."""

from __future__ import annotations

from typing import Any


def plain(value: Any, also: tuple[type, ...] = ()) -> bool:
    """Text, integers, booleans and None, and values of the exact types ``also`` (which
    both encoders hand to the same ``default``), in dicts with text keys and lists."""
    kind = type(value)
    if kind is dict:
        return all(type(k) is str and plain(v, also) for k, v in value.items())
    if kind is list:
        return all(plain(v, also) for v in value)
    return kind is str or kind is int or kind is bool or value is None or kind in also
