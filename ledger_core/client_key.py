"""ClientKey: a key a client chose (a reservation id), claimed once per account.

It is saved in the same atomic write as the account's event, so a key can never be
claimed twice: the second writer's insert of version 1 collides. It also remembers
the first result, which a repeat of the same request gets back.

Keeping these out of the Account aggregate keeps the account (and its snapshots)
small however many usage records it has seen.

Idempotency keys of usage and charges are rows of a keys table instead, written with
the booking's event (persistence/recorders.py): one row, not a second aggregate and event.
Claims of usage and charge keys saved as ClientKey aggregates before that table existed
are copied into it once, when it is created (Ledger._legacy_claims).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid5

import orjson
from eventsourcing.domain import Aggregate, event

from ledger_core.account import LEDGER_NAMESPACE
from ledger_core.errors import IdempotencyKeyReused, InvalidInput
from ledger_core.plain_json import plain

MAX_KEY_LENGTH = 128


class KeyKind(StrEnum):
    USAGE = "usage"
    CHARGE = "charge"
    RESERVATION = "reservation"
    PAYMENT = "payment"
    INVOICE = "invoice"  # a manual invoice; its claim's transaction_no holds the invoice id
    RECHARGE = "recharge"
    REFUND = "refund"
    SUBSCRIPTION = "subscription"  # a subscription change; its claim's transaction_no holds the subscription id
    ORDER = "order"  # an order placed; its claim's transaction_no holds the order id


class KeyStatus(StrEnum):
    DONE = "done"  # usage and charges: booked
    OPEN = "open"  # reservations: the hold is open
    SETTLED = "settled"
    RELEASED = "released"


def parse_client_key(key: object, field: str) -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(f"{field} must be 1-{MAX_KEY_LENGTH} printable characters", field=field)
    return key


def client_key_uuid(account_id: str, kind: KeyKind, key: str) -> UUID:
    return uuid5(LEDGER_NAMESPACE, f"key/{account_id}/{kind.value}/{key}")


def fingerprint(request: dict[str, Any]) -> str:
    """A digest of what was asked, so the same key with a different request is caught.
    Stored with every claim and compared on every retry: its bytes never change."""
    return hashlib.sha256(_canonical(request)).hexdigest()


def _canonical(request: dict[str, Any]) -> bytes:
    """``json.dumps(request, sort_keys=True, default=str, separators=(",", ":"))``, which
    defines the fingerprint. orjson writes the same bytes for the values ``plain``
    admits when the result is ASCII without DEL (json.dumps escapes everything else), in
    a tenth of the time; anything else goes to json.dumps itself."""
    if plain(request, _STRINGIFIED):
        try:
            fast = orjson.dumps(request, default=str, option=orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME)
            if fast.isascii() and b"\x7f" not in fast:
                return fast
        except orjson.JSONEncodeError:  # an integer past 64 bits
            pass
    return json.dumps(request, sort_keys=True, default=str, separators=(",", ":")).encode()


_STRINGIFIED = (Decimal, datetime, date, time)  # both write str(value) through ``default``


class ClientKey(Aggregate):
    @staticmethod
    def create_id(account_id: str, kind: str, key: str) -> UUID:
        return client_key_uuid(account_id, KeyKind(kind), key)

    @event("KeyClaimed")
    def __init__(
        self,
        account_id: str,
        kind: str,
        key: str,
        request_fingerprint: str,
        transaction_no: str | None,
        amount: Decimal,
        status: str,
    ) -> None:
        self.account_id = account_id
        self.kind = kind
        self.key = key
        self.request_fingerprint = request_fingerprint
        self.transaction_no = transaction_no
        self.amount = amount
        self.status = status

    def require_same_request(self, request_fingerprint: str) -> None:
        if request_fingerprint != self.request_fingerprint:
            raise IdempotencyKeyReused(
                f"{self.kind} key {self.key!r} was already used for a different request",
                key=self.key,
                transaction_no=self.transaction_no,
            )

    def close(self, status: KeyStatus, transaction_no: str | None, amount: Decimal) -> None:
        self._closed(status=status.value, transaction_no=transaction_no, amount=amount)

    @event("KeyClosed")
    def _closed(self, status: str, transaction_no: str | None, amount: Decimal) -> None:
        self.status = status
        self.transaction_no = transaction_no
        self.amount = amount
