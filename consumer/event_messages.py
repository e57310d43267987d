"""The JSON of one ledger event on the events topic (``ledger.events``), and nothing else.

    key   = account id (UTF-8): one account's events share a partition, so they stay in order
    value = {"schema_version": 1, "type": "UsageRecorded", "account_id": "acme",
             "position": 1234, "version": 7, "transaction_no": "acme:00000007",
             "timestamp": "2026-11-26T09:00:00.000000Z", "payload": {...}}

``position`` is the event's notification id in the ledger's log: unique, and increasing
in log order (so per account too). Delivery is at least once; a consumer applies a
message only if its position is greater than the last one it applied for that account.
``payload`` is what GET /v1/accounts/{id}/events shows: the event's own fields, amounts
as exact decimal strings. ``transaction_no`` is set for money movements only.

``LowBalanceReached`` travels as type ``LowBalance``, with ``payload`` = usable_credits,
threshold, crossed_version and crossed_position (the event that took usable credits
below the threshold; it is always the one just before, in the same append).
"""

from __future__ import annotations

import json
from typing import Any

from ledger_core.account import transaction_no
from service.history import HIDDEN_ATTRIBUTES
from service.history import plain as plain  # the history endpoint's exact JSON values, on purpose the same

SCHEMA_VERSION = 1
WIRE_TYPES = {"LowBalanceReached": "LowBalance"}
MONEY_MOVEMENTS = frozenset({"Recharged", "UsageRecorded", "ChargePosted", "ReservationSettled"})


def event_message(event: Any, position: int, account_id: str, crossed_position: int | None = None) -> dict[str, Any]:
    """The message of one Account domain event stored at ``position``."""
    event_type = type(event).__name__
    payload = {k: plain(v) for k, v in vars(event).items() if k not in HIDDEN_ATTRIBUTES}
    if event_type == "LowBalanceReached":
        payload["crossed_position"] = crossed_position
    return {
        "schema_version": SCHEMA_VERSION,
        "type": WIRE_TYPES.get(event_type, event_type),
        "account_id": account_id,
        "position": position,
        "version": event.originator_version,
        "transaction_no": transaction_no(account_id, event.originator_version) if event_type in MONEY_MOVEMENTS
        else None,
        "timestamp": plain(event.timestamp),
        "payload": payload,
    }


def encode(message: dict[str, Any]) -> tuple[bytes, bytes]:
    """(key, value) as sent: the account id, and compact JSON."""
    return message["account_id"].encode("utf-8"), json.dumps(message, separators=(",", ":")).encode("utf-8")


def decode(value: bytes) -> dict[str, Any]:
    """A message as a consumer reads it: amounts stay strings (parse them with Decimal)."""
    return dict(json.loads(value.decode("utf-8")))
