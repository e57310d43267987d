"""Applying one Kafka message to the ledger, exactly once, whatever happens around it.

The message's effect and the record of having handled it (its partition's position,
offset + 1) are written in one transaction: by the event recorder when the message
appends events (the cause carries the position), else by the consumer store together
with what must be published. ``event_id`` is the idempotency key of a usage record,
so a resend at a new offset changes nothing either.

Outcomes: applied; duplicate (nothing new); dead letter (malformed, unknown account,
currency mismatch, bad amounts: the original bytes go to the dead-letter topic with a
reason); rejected (a business answer, e.g. insufficient credits for a reserve, sent to
the results topic keyed by event_id, since the sender is a service, not a person).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from commands.audit_log import caused_by
from commands.ledger import Booking, Ledger
from consumer.messages import AMOUNT_FIELDS, BadMessage, parse
from consumer.store import ConsumerStore, OutboxMessage
from ledger_core.errors import LedgerError
from service.ledger_service import LedgerService

# Domain errors that mean "this message is wrong", not "the ledger said no".
DEAD_LETTER_CODES = frozenset({"invalid_input", "invalid_amount", "invalid_currency", "account_not_found",
                               "currency_mismatch"})
MAX_HEADER_TEXT = 500


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    DEAD_LETTER = "dead_letter"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Incoming:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class Topics:
    usage: str = "ledger.usage"
    dead_letters: str = "ledger.usage.dlq"
    results: str = "ledger.usage.results"


class Ingestor:
    def __init__(self, service: LedgerService, store: ConsumerStore, topics: Topics, group_id: str) -> None:
        self.service, self.store, self.topics, self.group_id = service, store, topics, group_id

    def source(self, topic: str, partition: int) -> str:
        return f"kafka:{self.group_id}:{topic}:{partition}"

    def handle(self, m: Incoming) -> Outcome:
        source, position = self.source(m.topic, m.partition), m.offset + 1
        try:
            message = parse(m.value)
        except BadMessage as bad:
            self.store.record(source, position, [self._dead_letter(m, bad.reason, bad.message)])
            return Outcome.DEAD_LETTER
        cause = {"kind": "kafka", "topic": m.topic, "partition": m.partition, "offset": m.offset,
                 "event_id": message["event_id"], "source": source, "source_position": position}
        try:
            with caused_by(**cause):
                booking = self.service.run(command_for(message))
        except LedgerError as error:
            reason = _reason(error)
            if reason in DEAD_LETTER_CODES:
                self.store.record(source, position, [self._dead_letter(m, reason, error.message)])
                return Outcome.DEAD_LETTER
            self.store.record(source, position, [self._reply(message, error)])
            return Outcome.REJECTED
        if booking.position is None:  # nothing appended, so the recorder did not record it
            self.store.record(source, position, [])
            return Outcome.DUPLICATE
        return Outcome.APPLIED

    def _dead_letter(self, m: Incoming, reason: str, detail: str) -> OutboxMessage:
        headers = (("reason", reason), ("detail", detail[:MAX_HEADER_TEXT]), ("source_topic", m.topic),
                   ("source_partition", str(m.partition)), ("source_offset", str(m.offset)))
        return OutboxMessage(self.topics.dead_letters, m.key, m.value or b"",
                             tuple((k, v.encode("utf-8")) for k, v in headers))

    def _reply(self, message: dict[str, Any], error: LedgerError) -> OutboxMessage:
        body = {"event_id": message["event_id"], "type": message["type"], "account_id": message["account_id"],
                "status": "rejected", "code": error.code, "message": error.message,
                "details": {k: str(v) for k, v in error.details.items()}}
        return OutboxMessage(self.topics.results, message["event_id"].encode("utf-8"), json.dumps(body).encode("utf-8"))


def _reason(error: LedgerError) -> str:
    if error.code == "invalid_input" and error.details.get("field") in AMOUNT_FIELDS:
        return "invalid_amount"  # e.g. a negative cost
    return error.code


def command_for(message: dict[str, Any]) -> Callable[[Ledger], Booking]:
    """The ledger command a validated message asks for."""
    m, account = message, message["account_id"]
    used = {k: m.get(k) for k in ("application_id", "app_key", "quantity", "unit", "currency")}
    if m["type"] == "usage":
        return lambda ledger: ledger.record_usage(
            account, idempotency_key=m["event_id"], product=m["product"], occurred_at=m.get("occurred_at"),
            amount=m.get("amount"), unit_price=m.get("unit_price"), **used)
    if m["type"] == "reserve":
        return lambda ledger: ledger.reserve(account, reservation_id=m["reservation_id"], amount=m["amount"],
                                             expires_at=m.get("expires_at"), currency=m.get("currency"))
    if m["type"] == "settle":
        return lambda ledger: ledger.settle(account, m["reservation_id"], amount=m["amount"], product=m["product"],
                                            **used)
    return lambda ledger: ledger.release(account, m["reservation_id"], reason=m.get("reason", "cancelled"))
