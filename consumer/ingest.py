"""Applying one Kafka message to the ledger, exactly once, whatever happens around it.

A batch's effects, the record of having handled its messages (each partition's position,
offset + 1) and what they must publish are written in one transaction: by the event
recorder when the batch appends events, else by the consumer store. ``event_id`` is the
idempotency key of a usage record, so a resend at a new offset changes nothing either.

Outcomes: applied; duplicate (nothing new); dead letter (malformed, unknown account,
currency mismatch, bad amounts: the original bytes go to the dead-letter topic with a
reason); rejected (a business answer, e.g. insufficient credits for a reserve, sent to
the results topic keyed by event_id, since the sender is a service, not a person). A
reserve that is booked is answered there too (status accepted), in the booking's write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from eventsourcing.persistence import IntegrityError

from commands.ledger import LedgerBatch
from commands.unit_of_work import WarmAccounts
from consumer.messages import AMOUNT_FIELDS, BadMessage, parse
from consumer.store import ConsumerStore
from ledger_core.client_key import KeyKind
from ledger_core.commands import Command, RecordUsage, Release, ReportPower, Reserve, Settle
from ledger_core.errors import LedgerError
from ledger_core.money import format_amount
from ledger_core.usage import UsageLine
from persistence.appending import AppendExtras, OutboxMessage, appending_with, caused_by
from service.ledger_service import LedgerService

# Domain errors that mean "this message is wrong", not "the ledger said no".
DEAD_LETTER_CODES = frozenset({"invalid_input", "invalid_amount", "invalid_currency", "account_not_found",
                               "currency_mismatch"})
MAX_HEADER_TEXT = 500
DEFAULT_WARM_ACCOUNTS = 20_000


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
    def __init__(self, service: LedgerService, store: ConsumerStore, topics: Topics, group_id: str,
                 warm_accounts: int = DEFAULT_WARM_ACCOUNTS) -> None:
        self.service, self.store, self.topics, self.group_id = service, store, topics, group_id
        self.warm = WarmAccounts(warm_accounts)  # accounts kept from batch to batch (commands/unit_of_work.py)
        self.batches_retried = 0  # observable: batches lost on a stale warm account and tried again

    def source(self, topic: str, partition: int) -> str:
        return f"kafka:{self.group_id}:{topic}:{partition}"

    def handle_batch(self, messages: list[Incoming]) -> list[Outcome]:
        """Many messages, one atomic write: their events, their partitions' positions and
        what they must publish. If that write loses a race (a key claimed by an earlier
        write, another writer on an account), nothing of it is stored; a batch that used
        warm accounts is then tried once more on fresh loads, else the messages are handled
        one by one."""
        ledger = self.service.commands
        parsed = [_parsed(m) for m in messages]
        valid = [p for p in parsed if isinstance(p, dict)]
        accounts = {p["account_id"] for p in valid}
        usage_keys = [(p["account_id"], KeyKind.USAGE, p["event_id"]) for p in valid if p["type"] == "usage"]
        for attempt in range(2):
            extras, used_warm = AppendExtras(sources=self._positions(messages)), False
            try:
                with ledger.batch(extras, accounts=accounts, keys=usage_keys, warm=self.warm) as batch:
                    used_warm = bool(batch.warm)
                    outcomes = [self._decide(m, batch, extras.outbox, p)
                                for m, p in zip(messages, parsed, strict=True)]
                break
            except IntegrityError:  # the failed batch's accounts have left the warm set
                if attempt or not used_warm:
                    return [self.handle(m) for m in messages]
                self.batches_retried += 1
        if batch.position is None:
            self.store.record(extras)  # no events: positions and outbox on their own
        else:
            self.service.projector.catch_up(until=batch.position, written=batch.recordings)
        return outcomes

    def handle(self, m: Incoming) -> Outcome:
        """One message in a write of its own (the fallback of a batch)."""
        extras = AppendExtras(sources=self._positions([m]))
        with appending_with(extras):
            outcome = self._decide(m, None, extras.outbox)
        if outcome is not Outcome.APPLIED:  # nothing appended, so the recorder wrote nothing
            self.store.record(extras)
        return outcome

    def _decide(self, m: Incoming, batched: LedgerBatch | None, outbox: list[OutboxMessage],
                parsed: dict[str, Any] | BadMessage | None = None) -> Outcome:
        message = _parsed(m) if parsed is None else parsed
        if isinstance(message, BadMessage):
            outbox.append(self._dead_letter(m, message.reason, message.message))
            return Outcome.DEAD_LETTER
        cause = {"kind": "kafka", "topic": m.topic, "partition": m.partition, "offset": m.offset,
                 "event_id": message["event_id"]}
        # Added before the command runs, so that a single-message write (no batch) stores
        # it with the booking's events; taken back if the command is refused.
        accepted = self._accepted(message) if message["type"] == "reserve" else None
        if accepted:
            outbox.append(accepted)
        try:
            with caused_by(**cause):
                command = command_for(message)
                booking = batched.handle(command) if batched is not None else self.service.handle(command)
        except LedgerError as error:
            if accepted:
                outbox.remove(accepted)
            reason = _reason(error)
            if reason in DEAD_LETTER_CODES:
                outbox.append(self._dead_letter(m, reason, error.message))
                return Outcome.DEAD_LETTER
            outbox.append(self._reply(message, error))
            return Outcome.REJECTED
        if booking.replayed or (batched is None and booking.position is None):
            return Outcome.DUPLICATE
        return Outcome.APPLIED

    def _positions(self, messages: list[Incoming]) -> dict[str, int]:
        positions: dict[str, int] = {}
        for m in messages:
            source = self.source(m.topic, m.partition)
            positions[source] = max(positions.get(source, 0), m.offset + 1)
        return positions

    def _dead_letter(self, m: Incoming, reason: str, detail: str) -> OutboxMessage:
        headers = (("reason", reason), ("detail", detail[:MAX_HEADER_TEXT]), ("source_topic", m.topic),
                   ("source_partition", str(m.partition)), ("source_offset", str(m.offset)))
        return OutboxMessage(self.topics.dead_letters, m.key, m.value or b"",
                             tuple((k, v.encode("utf-8")) for k, v in headers))

    def _accepted(self, message: dict[str, Any]) -> OutboxMessage:
        """The answer to a reserve that is booked: the rejection's shape, status accepted."""
        body = {"event_id": message["event_id"], "type": message["type"], "account_id": message["account_id"],
                "status": "accepted", "code": None, "message": "reserved",
                "details": {"reservation_id": message["reservation_id"], "amount": format_amount(message["amount"])}}
        return OutboxMessage(self.topics.results, message["event_id"].encode("utf-8"), json.dumps(body).encode("utf-8"))

    def _reply(self, message: dict[str, Any], error: LedgerError) -> OutboxMessage:
        body = {"event_id": message["event_id"], "type": message["type"], "account_id": message["account_id"],
                "status": "rejected", "code": error.code, "message": error.message,
                "details": {k: str(v) for k, v in error.details.items()}}
        return OutboxMessage(self.topics.results, message["event_id"].encode("utf-8"), json.dumps(body).encode("utf-8"))


def _parsed(m: Incoming) -> dict[str, Any] | BadMessage:
    try:
        return parse(m.value)
    except BadMessage as bad:
        return bad


def _reason(error: LedgerError) -> str:
    if error.code == "invalid_input" and error.details.get("field") in AMOUNT_FIELDS:
        return "invalid_amount"  # e.g. a negative cost
    return error.code


def command_for(message: dict[str, Any]) -> Command:
    """The ledger command a validated message asks for."""
    m, account = message, message["account_id"]
    if m["type"] == "usage":
        return RecordUsage(account, idempotency_key=m["event_id"], line=UsageLine.of(m), amount=m.get("amount"),
                           unit_price=m.get("unit_price"), occurred_at=m.get("occurred_at"), currency=m.get("currency"))
    if m["type"] == "reserve":
        return Reserve(account, reservation_id=m["reservation_id"], amount=m["amount"], expires_at=m.get("expires_at"),
                       currency=m.get("currency"))
    if m["type"] == "settle":
        return Settle(account, m["reservation_id"], amount=m["amount"], line=UsageLine.of(m),
                      currency=m.get("currency"))
    if m["type"] == "power":
        return ReportPower(account, m["order_id"], event_id=m["event_id"], state=m["state"], at=m.get("occurred_at"))
    return Release(account, m["reservation_id"], reason=m.get("reason", "cancelled"))
