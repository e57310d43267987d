"""How a command's decision is written: alone, or as one of a batch's.

A handler (commands/handlers.py) says what to decide: ``decide(account)`` lets the
Account decide and returns the answer with what else changed (claimed keys, client-key
aggregates, invoice number counters). The unit of work it is given says how that is
written:

- ``SingleWrite``: load the account, decide, save every changed aggregate in one
  atomic write; a lost optimistic-concurrency race is retried from a fresh load.
- ``BatchWrite``: decide against aggregates held in memory by a ``LedgerBatch``;
  everything is saved when the batch ends, in one write (commands/ledger.py).

Both share the rules of idempotency keys (``once``, ``maybe_once``, ``claiming``).
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Recording
from eventsourcing.utils import get_topic

from commands.bookings import Booking, Clock, Standing
from ledger_core.account import Account, account_uuid, parse_account_id
from ledger_core.client_key import ClientKey, KeyKind, client_key_uuid, fingerprint, parse_client_key
from ledger_core.errors import (
    AccountNotFound,
    ConcurrentModification,
    IdempotencyKeyReused,
    InvariantViolation,
    LedgerError,
    ReservationClosed,
    ReservationNotFound,
)
from ledger_core.money import Money
from persistence.appending import AppendExtras, KeyClaim, appending_with, current_appending, current_cause

MAX_ATTEMPTS = 5

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)
Changed = Aggregate | KeyClaim  # what a decision changes besides the account: other aggregates, claimed keys
Decide = Callable[[Account], tuple[T, list[Changed]]]


def load(app: Application[UUID], aggregate_id: UUID, kind: type[A], not_found: Callable[[], LedgerError], *,
         to_change: bool = True) -> A:
    """The aggregate, of ``kind``; ``to_change=False`` reads the cached one itself (no copy):
    for reads only."""
    try:
        aggregate = app.repository.get(aggregate_id, deepcopy_from_cache=to_change)
    except AggregateNotFoundError:
        raise not_found() from None
    if not isinstance(aggregate, kind):
        raise InvariantViolation(f"{aggregate_id} is a {type(aggregate).__name__}, not a {kind.__name__}")
    return aggregate


def load_owned(app: Application[UUID], aggregate_id: UUID, kind: type[A], account_id: str, not_found: LedgerError,
               *, to_change: bool = True) -> A:
    """The aggregate (an order, a subscription), if it is ``account_id``'s: another account's
    is not found either."""
    aggregate = load(app, aggregate_id, kind, lambda: not_found, to_change=to_change)
    if aggregate.account_id != account_id:  # type: ignore[attr-defined]
        raise not_found
    return aggregate


def derived_id(prefix: str, account_id: str, key: str | None) -> str:
    """A new aggregate's id (``sub_...``, ``ord_...``) from the request's idempotency key, so
    a retry names the same one; random without a key."""
    if key is None:
        return f"{prefix}_{secrets.token_hex(12)}"
    return f"{prefix}_{hashlib.sha256(chr(0).join((account_id, key)).encode()).hexdigest()[:24]}"


def created(app: Application[UUID], first_event: type, limit: int) -> list[Aggregate]:
    """The aggregates whose first event is of class ``first_event``, oldest first, at most
    ``limit``: found through the log's topics (for small sets: keys, plans, a sweep)."""
    topic, ids, position = get_topic(first_event), [], 0
    while len(ids) < limit:
        found = app.recorder.select_notifications(start=position + 1, limit=500, topics=[topic])
        if not found:
            break
        ids.extend(app.mapper.to_domain_event(n).originator_id for n in found)
        position = found[-1].id
    return [app.repository.get(i) for i in ids[:limit]]


def load_account(app: Application[UUID], account_id: str) -> Account:
    return load(app, account_uuid(parse_account_id(account_id)), Account,
                lambda: AccountNotFound(f"no account {account_id!r}", account_id=account_id))


def money_of(amount: Decimal, currency: str | None, account: Account) -> Money:
    """An amount in the command's currency, else the account's. Both were checked already
    (the command's when it was built), so this is Money itself, not Money.of."""
    return Money(amount, currency or account.currency)


class WarmAccounts:
    """Accounts as this process's last successful batches left them, for the next batches:
    no read at all for an account seen recently (least recently used ones are dropped).

    Used without checking the store first. A batch that writes to an account another
    writer (the HTTP API, another consumer) changed meanwhile collides on the account's
    next version (IntegrityError) and nothing of it is stored; a refusal decided on a warm
    account the batch does not write to is decided again on a fresh load. Accounts are
    taken out while a batch uses them and put back only once it is stored, so a batch
    that fails leaves nothing half-changed here."""

    def __init__(self, max_accounts: int) -> None:
        if max_accounts < 0:
            raise ValueError("max_accounts must be >= 0")
        self.max_accounts = max_accounts
        self._accounts: OrderedDict[str, Account] = OrderedDict()

    def __len__(self) -> int:
        return len(self._accounts)

    def take(self, account_ids: Iterable[str]) -> dict[str, Account]:
        taken = {}
        for account_id in account_ids:
            account = self._accounts.pop(account_id, None)
            if account is not None:
                taken[account_id] = account
        return taken

    def keep(self, accounts: Iterable[Account]) -> None:
        for account in accounts:
            self._accounts[account.account_id] = account
            self._accounts.move_to_end(account.account_id)
        while len(self._accounts) > self.max_accounts:
            self._accounts.popitem(last=False)

    def clear(self) -> None:
        self._accounts.clear()


@dataclass
class BatchState:
    """What a batch holds until it is saved (see commands/ledger.py LedgerBatch)."""

    extras: AppendExtras
    accounts: dict[str, Account] = field(default_factory=dict)
    warm: set[str] = field(default_factory=set)  # accounts taken from WarmAccounts, not loaded for this batch
    claims: dict[UUID, ClientKey] = field(default_factory=dict)
    # (account, kind, key) -> claimed before, or in this batch
    keys: dict[tuple[str, str, str], KeyClaim] = field(default_factory=dict)
    changed: dict[UUID, Aggregate] = field(default_factory=dict)


class UnitOfWork:
    """What handlers write through; subclasses say whether alone or in a batch."""

    def __init__(self, app: Application[UUID], clock: Clock) -> None:
        self.app = app
        self.clock = clock

    # -- the two ways to write -------------------------------------------------------
    def write(self, account_id: str, decide: Decide[T], *, on_conflict: Callable[[], None] | None = None,
              attempts: int = MAX_ATTEMPTS) -> tuple[T, int | None]:
        """The answer of ``decide`` and the log position of the write (None: nothing written yet)."""
        raise NotImplementedError

    def save_alone(self, *aggregates: Aggregate) -> list[Recording]:
        """Saves aggregates that are written on their own, never in a batch (a new account, a key)."""
        raise InvariantViolation(f"{type(aggregates[0]).__name__} is written on its own, not in a batch")

    def _known_key(self, account_id: str, kind: KeyKind, key: str) -> tuple[KeyClaim | None, bool]:
        """A key claim known without a read, and whether every claimed key is known so."""
        return None, False

    def _known_claim(self, claim_id: UUID) -> ClientKey | None:
        return None

    def _remember_claim(self, claim: ClientKey) -> None:
        """Later commands of the same unit must see a loaded claim's changes."""

    # -- shared rules ------------------------------------------------------------------
    def booked(self, account_id: str, decide: Decide[Booking]) -> Booking:
        booking, position = self.write(account_id, decide)
        return replace(booking, position=position)

    def client_key(self, account_id: str, kind: KeyKind, key: str) -> ClientKey | None:
        claim_id = client_key_uuid(account_id, kind, key)
        known = self._known_claim(claim_id)
        if known is not None:
            return known
        try:
            claim = self.app.repository.get(claim_id)
        except AggregateNotFoundError:
            return None
        if not isinstance(claim, ClientKey):
            raise InvariantViolation(f"client key {claim_id} is a {type(claim).__name__}")
        self._remember_claim(claim)
        return claim

    def open_reservation(self, account: Account, reservation_id: str) -> ClientKey:
        claim = self.client_key(account.account_id, KeyKind.RESERVATION, reservation_id)
        if claim is None:
            raise ReservationNotFound(f"no reservation {reservation_id!r}", reservation_id=reservation_id)
        if reservation_id not in account.holds:
            raise ReservationClosed(f"reservation {reservation_id!r} is already {claim.status}",
                                    reservation_id=reservation_id, status=claim.status)
        return claim

    def hold_claim(self, account_id: str, reservation_id: str) -> ClientKey:
        """The claim of a hold the account has open (or has just released)."""
        claim = self.client_key(account_id, KeyKind.RESERVATION, reservation_id)
        if claim is None:
            raise InvariantViolation(f"hold {reservation_id!r} of {account_id!r} has no claimed reservation key")
        return claim

    @staticmethod
    def claim(kind: KeyKind, account_id: str, key: str | None, request: dict[str, Any], number: str | None,
              amount: Decimal) -> list[Changed]:
        """The key claim a booking saves with its event; none without a key."""
        if key is None:
            return []
        return [KeyClaim(account_id, kind.value, key, fingerprint(request), number, amount)]

    def maybe_once(self, account_id: str, kind: KeyKind, key: str | None, request: dict[str, Any],
                   decide: Decide[Booking], attempts: int = MAX_ATTEMPTS) -> Booking:
        """Once per key when the client gave one (see ``once``); else a plain booking."""
        if key is None:
            return self.booked(account_id, decide)
        return self.once(account_id, kind, parse_client_key(key, "idempotency_key"), request, decide, attempts)

    def once(self, account_id: str, kind: KeyKind, key: str, request: dict[str, Any], decide: Decide[Booking],
             attempts: int = MAX_ATTEMPTS) -> Booking:
        """Books once per idempotency key; a repeat reports the first result, even when a
        concurrent twin won the race. The key is claimed by a row of the keys table
        written with the booking's event (persistence/recorders.py)."""

        def replay(claim: KeyClaim) -> Booking:
            if claim.fingerprint != fingerprint(request):
                raise IdempotencyKeyReused(f"{kind.value} key {key!r} was already used for a different request",
                                           key=key, transaction_no=claim.transaction_no)
            return Booking(account_id, None, claim.transaction_no, claim.amount, replayed=True)

        def known_here() -> tuple[Booking | None, bool]:
            known, knows_all = self._known_key(account_id, kind, key)
            return (None if known is None else replay(known)), knows_all

        def look_up() -> Booking | None:
            claimed = self.app.recorder.claimed([(account_id, kind.value, key)])  # type: ignore[attr-defined]
            return replay(claimed[0]) if claimed else None

        return self._keyed_write(account_id, decide, known_here, look_up, attempts)

    def claiming(self, account_id: str, kind: KeyKind, key: str, decide: Decide[Booking],
                 claimed_before: Callable[[ClientKey], Booking]) -> Booking:
        """Runs ``decide`` (which claims ``key`` as a ClientKey aggregate) unless the key
        was claimed before, in which case ``claimed_before`` answers."""

        def known_here() -> tuple[Booking | None, bool]:
            known = self._known_claim(client_key_uuid(account_id, kind, key))
            return (None if known is None else claimed_before(known)), False

        def look_up() -> Booking | None:
            claim = self.client_key(account_id, kind, key)
            return None if claim is None else claimed_before(claim)

        return self._keyed_write(account_id, decide, known_here, look_up)

    def _keyed_write(self, account_id: str, decide: Decide[Booking],
                     known_here: Callable[[], tuple[Booking | None, bool]],
                     look_up: Callable[[], Booking | None], attempts: int = MAX_ATTEMPTS) -> Booking:
        """Runs ``decide``, which claims a key, unless the key was claimed before: then the
        earlier answer (``known_here`` without a read, else ``look_up``) stands.

        A new key, the usual case, costs no read: a duplicate collides on save and the
        retry looks it up. A refusal is looked up too, since a repeat of a request
        accepted earlier may be refused by today's state."""
        look_first = False

        def attempt(account: Account) -> tuple[Booking, list[Changed]]:
            earlier, knows_all = known_here()
            if earlier is not None:
                return earlier, []
            if knows_all:
                return decide(account)
            if not look_first:
                try:
                    return decide(account)
                except LedgerError:
                    pass
            earlier = look_up()
            return (earlier, []) if earlier is not None else decide(account)

        def conflicted() -> None:
            nonlocal look_first
            look_first = True

        booking, position = self.write(account_id, attempt, on_conflict=conflicted, attempts=attempts)
        return booking if booking.replayed else replace(booking, position=position)


class SingleWrite(UnitOfWork):
    """Each write on its own: load, decide, save atomically, retry a lost race."""

    def __init__(self, app: Application[UUID], clock: Clock, on_retry: Callable[[], None],
                 loaded: dict[str, Account] | None = None) -> None:
        super().__init__(app, clock)
        self.on_retry = on_retry
        self.loaded = dict(loaded or {})  # accounts loaded for this write already: each used once, by its first attempt

    def save_alone(self, *aggregates: Aggregate) -> list[Recording]:
        return self.app.save(*aggregates)

    def write(self, account_id: str, decide: Decide[T], *, on_conflict: Callable[[], None] | None = None,
              attempts: int = MAX_ATTEMPTS) -> tuple[T, int | None]:
        for _ in range(attempts):
            account = self.loaded.pop(account_id, None) or load_account(self.app, account_id)
            result, others = decide(account)
            aggregates = [account, *(a for a in others if not isinstance(a, KeyClaim))]
            claims = [c for c in others if isinstance(c, KeyClaim)]
            if not any(aggregate.pending_events for aggregate in aggregates):
                return result, None  # nothing changed: no write, no table lock
            try:
                with appending_with((current_appending() or AppendExtras()).with_claims(claims)):
                    recordings: list[Recording] = self.app.save(*aggregates)
            except IntegrityError:
                self.on_retry()
                if on_conflict:
                    on_conflict()
                continue
            if isinstance(result, Booking):
                result = replace(result, after=Standing.of(account))  # type: ignore[assignment]
            return result, (recordings[-1].notification.id if recordings else None)
        raise ConcurrentModification(
            f"account {account_id!r} kept changing under this request; retry it", account_id=account_id
        )


class BatchWrite(UnitOfWork):
    """Decides against the batch's aggregates in memory; the batch saves them all at its end."""

    def __init__(self, app: Application[UUID], clock: Clock, state: BatchState) -> None:
        super().__init__(app, clock)
        self.state = state

    def write(self, account_id: str, decide: Decide[T], *, on_conflict: Callable[[], None] | None = None,
              attempts: int = MAX_ATTEMPTS) -> tuple[T, int | None]:
        state = self.state
        account = state.accounts.get(account_id)
        if account is None:
            account = state.accounts[account_id] = load_account(self.app, account_id)
        try:
            result, others = decide(account)
        except LedgerError:
            if account_id not in state.warm or account.pending_events:
                raise  # decided on a fresh load, or on state this batch's write will check
            # A refusal on a warm account this batch does not write: it stands only if a
            # fresh load refuses too (another writer may have changed the account).
            state.warm.discard(account_id)
            account = state.accounts[account_id] = load_account(self.app, account_id)
            result, others = decide(account)
        cause = current_cause()
        for claimed in others:
            if isinstance(claimed, KeyClaim):
                state.keys[(claimed.account_id, claimed.kind, claimed.key)] = claimed
                state.extras.claims.append(claimed)
        for aggregate in (account, *others):
            if isinstance(aggregate, KeyClaim):
                continue
            if isinstance(aggregate, ClientKey):
                state.claims[aggregate.id] = aggregate
            for event in aggregate.pending_events:
                state.extras.causes.setdefault((aggregate.id, event.originator_version), cause)
            if aggregate.pending_events:
                earlier = state.changed.get(aggregate.id)
                if earlier is not None and earlier is not aggregate:
                    # Two commands of the batch changed their own copies of one aggregate (an
                    # order, a counter): saving either would lose the other's events. The batch
                    # fails as a lost race does, and its commands are written one by one.
                    raise IntegrityError(f"{type(aggregate).__name__} {aggregate.id} changed twice in one batch")
                state.changed[aggregate.id] = aggregate
        return result, None

    def _known_key(self, account_id: str, kind: KeyKind, key: str) -> tuple[KeyClaim | None, bool]:
        # The batch looked its keys up in advance (or claimed them itself): it knows
        # them all; keys claimed by other writes meanwhile collide when it is saved.
        return self.state.keys.get((account_id, kind.value, key)), True

    def _known_claim(self, claim_id: UUID) -> ClientKey | None:
        # Claimed earlier in this batch: known without a read (and not to be claimed twice).
        return self.state.claims.get(claim_id)

    def _remember_claim(self, claim: ClientKey) -> None:
        self.state.claims[claim.id] = claim
