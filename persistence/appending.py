"""What an append writes besides its events, and the cause it records: the values the
write side hands to the audited recorders (persistence/recorders.py).

The cause comes from a context variable that each edge sets around its commands
(``caused_by``): an HTTP request, a CLI command, a Kafka message. An edge that consumes
a stream also hands ``AppendExtras``: the position each source (a Kafka partition) has
reached, and messages to publish once committed (an outbox). They are written in the
same transaction as the events, so the effect of a batch of messages, the record of
having handled them and what they must publish are stored together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol
from uuid import UUID

UNSPECIFIED_CAUSE: dict[str, Any] = {"kind": "unspecified"}
_current_cause: ContextVar[dict[str, Any]] = ContextVar("ledger_cause", default=UNSPECIFIED_CAUSE)


@dataclass(frozen=True)
class OutboxMessage:
    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class KeyClaim:
    """An idempotency key (usage, charge) claimed by an account, with the first result.

    One row per key, inserted in the transaction of the event it booked: the primary key
    (account_id, kind, key) refuses a second claim, which rolls that whole append back."""

    account_id: str
    kind: str
    key: str
    fingerprint: str
    transaction_no: str | None
    amount: Decimal

    def row(self) -> tuple[Any, ...]:
        return (self.account_id, self.kind, self.key, self.fingerprint, self.transaction_no, f"{self.amount:f}")

    @classmethod
    def from_row(cls, row: Any) -> KeyClaim:
        return cls(row["account_id"], row["kind"], row["key"], row["fingerprint"], row["transaction_no"],
                   Decimal(row["amount"]))


@dataclass
class AppendExtras:
    sources: dict[str, int] = field(default_factory=dict)  # source -> position after its last handled message
    outbox: list[OutboxMessage] = field(default_factory=list)
    causes: dict[tuple[UUID, int], dict[str, Any]] = field(default_factory=dict)  # per event, else the current one
    claims: list[KeyClaim] = field(default_factory=list)  # idempotency keys the append claims

    def with_claims(self, claims: list[KeyClaim]) -> AppendExtras:
        """These extras plus ``claims``, leaving these untouched (for one attempt of a write)."""
        return AppendExtras(self.sources, self.outbox, self.causes, [*self.claims, *claims])


_extras: ContextVar[AppendExtras | None] = ContextVar("ledger_append_extras", default=None)


@contextmanager
def caused_by(**cause: Any) -> Iterator[None]:
    """Every event appended inside this block records ``cause`` (kind=http|kafka|command, ...)."""
    token = set_cause(**cause)
    try:
        yield
    finally:
        _current_cause.reset(token)


def current_cause() -> dict[str, Any]:
    return _current_cause.get()


def set_cause(**cause: Any) -> Token[dict[str, Any]]:
    """For edges whose request scope is not a block (Flask's before/teardown hooks)."""
    return _current_cause.set(cause)


def reset_cause(token: Token[dict[str, Any]]) -> None:
    _current_cause.reset(token)


def current_appending() -> AppendExtras | None:
    """The extras appends write at this point, if an edge handed any."""
    return _extras.get()


@contextmanager
def appending_with(extras: AppendExtras) -> Iterator[AppendExtras]:
    """Appends inside this block also write ``extras`` in their transaction."""
    token = _extras.set(extras)
    try:
        yield extras
    finally:
        _extras.reset(token)


class WrittenAlong(Protocol):
    """What else an append writes in its own transaction, once its events have their log
    positions: the read model (projections/catchup.py), so a write needs no second
    transaction to become readable."""

    def prepare_along(self, events: Sequence[Any]) -> PreparedAlong | None:
        """Reads what writing along ``events`` (domain events, in the order the append
        stores them) will need, before the append's transaction takes any lock; None: it
        will not write along with this append."""
        ...


class PreparedAlong(Protocol):
    def write_along(self, cursor: Any, positions: Sequence[int]) -> Callable[[], None] | None:
        """Writes in the append's transaction, where its events now lie at ``positions``.
        Called inside a savepoint: whatever it raises rolls back what it wrote, never the
        events (the read model then catches up as before). Returns what to do once the
        transaction has committed, or None if it wrote nothing."""
        ...


_along: ContextVar[WrittenAlong | None] = ContextVar("ledger_written_along", default=None)
_saving: ContextVar[Sequence[Any]] = ContextVar("ledger_saving", default=())


@contextmanager
def written_along(writer: WrittenAlong | None) -> Iterator[None]:
    """Appends inside this block also let ``writer`` write in their transaction."""
    token = _along.set(writer)
    try:
        yield
    finally:
        _along.reset(token)


def current_along() -> WrittenAlong | None:
    return _along.get()


@contextmanager
def saving(events: Sequence[Any]) -> Iterator[None]:
    """The domain events of the append in progress, in order (the write side's save sets
    them; a recorder sees only their stored form)."""
    token = _saving.set(events)
    try:
        yield
    finally:
        _saving.reset(token)


def events_saving() -> Sequence[Any]:
    return _saving.get()
