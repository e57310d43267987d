"""The write side: one eventsourcing Application, one method per command.

Each command loads the account, lets the aggregate decide, and saves every changed
aggregate in one atomic write. A lost optimistic-concurrency race (another writer saved
the same account first) is retried from a fresh load, at most ``MAX_ATTEMPTS`` times.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Recording
from eventsourcing.utils import get_topic

from commands.api_keys import KeyCommands
from commands.audit_log import RECORDER_TOPICS as AUDITED_RECORDERS
from commands.audit_log import AppendExtras, KeyClaim, appending_with, current_appending, current_cause
from commands.bookings import Booking, Clock, Standing, utc_now
from commands.bulk_load import load_aggregates
from commands.invoicing import InvoicingCommands, NumberCounters
from ledger_core.account import CHARGE_KINDS, Account, account_uuid, parse_account_id
from ledger_core.client_key import (
    ClientKey,
    KeyKind,
    KeyStatus,
    client_key_uuid,
    fingerprint,
    parse_client_key,
)
from ledger_core.errors import (
    AccountExists,
    AccountNotFound,
    ConcurrentModification,
    IdempotencyKeyReused,
    InvalidInput,
    LedgerError,
    ReservationClosed,
    ReservationExists,
    ReservationNotFound,
    UnsafeText,
)
from ledger_core.money import (
    Money,
    parse_amount,
    parse_currency,
    parse_quantity,
    parse_unit_price,
)

MAX_ATTEMPTS = 5
SNAPSHOT_INTERVAL_EVENTS = 200
AGGREGATE_CACHE_SIZE = 10_000
UNCHANGED: Any = object()  # a setting not given (for settings where None means "off")

T = TypeVar("T")
Changed = Aggregate | KeyClaim  # what a decision changes besides the account: other aggregates, claimed keys


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
class LedgerBatch:
    extras: AppendExtras
    accounts: dict[str, Account] = field(default_factory=dict)
    warm: set[str] = field(default_factory=set)  # accounts taken from WarmAccounts, not loaded for this batch
    claims: dict[UUID, ClientKey] = field(default_factory=dict)
    keys: dict[tuple[str, str, str], KeyClaim] = field(default_factory=dict)  # (account, kind, key): claimed before or here
    changed: dict[UUID, Aggregate] = field(default_factory=dict)
    position: int | None = None  # of the last event written, once saved; None if nothing was
    recordings: list[Recording] = field(default_factory=list)  # what was written, once saved


_active_batch: ContextVar[LedgerBatch | None] = ContextVar("ledger_batch", default=None)


class Ledger(InvoicingCommands, KeyCommands, Application[UUID]):
    name = "Ledger"
    snapshotting_intervals = {Account: SNAPSHOT_INTERVAL_EVENTS}
    env = {"AGGREGATE_CACHE_MAXSIZE": str(AGGREGATE_CACHE_SIZE)}

    def __init__(self, env: dict[str, str] | None = None, clock: Clock = utc_now) -> None:
        env = dict(env or {})
        module = env.get("PERSISTENCE_MODULE", "")
        if module in AUDITED_RECORDERS:  # every stored event gets its audit record and chain link
            env.setdefault("APPLICATION_RECORDER_TOPIC", AUDITED_RECORDERS[module])
        super().__init__(env)
        self.clock = clock
        if module in AUDITED_RECORDERS and env.get("CREATE_TABLE", "y").lower() not in ("n", "no", "0", "false", "off"):
            self.recorder.ensure_keys_table(self._legacy_claims)  # type: ignore[attr-defined]
        self.conflicts_retried = 0  # observable count of lost races that were retried

    # -- accounts ----------------------------------------------------------------
    def save(self, *objs: Any, **kwargs: Any) -> list[Recording]:
        """As the library's; a lone surrogate in any text cannot be encoded to UTF-8 and
        fails the encoding of the events, before anything is written: a coded 400."""
        try:
            return super().save(*objs, **kwargs)
        except UnicodeEncodeError:
            raise UnsafeText("a text field holds a lone surrogate; nothing was stored") from None

    def open_account(self, **settings: Any) -> Booking:
        account = Account.open(**{"opened_at": self.clock(), **settings})
        if account.id in self.repository:
            raise AccountExists(f"account {account.account_id!r} already exists", account_id=account.account_id)
        try:
            recordings = self.save(account)
        except IntegrityError:
            raise AccountExists(f"account {account.account_id!r} already exists", account_id=account.account_id) from None
        return Booking(account.account_id, recordings[-1].notification.id)

    def account(self, account_id: str) -> Account:
        try:
            account = self.repository.get(account_uuid(parse_account_id(account_id)))
        except AggregateNotFoundError:
            raise AccountNotFound(f"no account {account_id!r}", account_id=account_id) from None
        assert isinstance(account, Account)
        return account

    def update_account(
        self,
        account_id: str,
        *,
        credit_limit: object = None,
        invoice_mode: str | None = None,
        usage_policy: str | None = None,
        payer: dict[str, Any] | None = None,
        tax_rate: object = None,
        low_balance_threshold: object = UNCHANGED,
        **recurring: Any,
    ) -> Booking:
        """Applies any subset of the settings changes at once: all of them or none.
        ``low_balance_threshold=None`` turns the signal off, so "not given" is UNCHANGED.
        ``recurring``: cycle_running, cycle_anchor_day, payment_terms_days,
        drafts_need_approval, time_zone (see Account.change_recurring)."""
        now = self.clock()

        def decide(account: Account) -> tuple[None, list[Changed]]:
            if credit_limit is not None:
                account.change_credit_limit(credit_limit)
            if invoice_mode is not None:
                account.change_invoice_mode(invoice_mode)
            if usage_policy is not None:
                account.change_usage_policy(usage_policy)
            if payer is not None or tax_rate is not None:
                account.change_billing_details(payer=payer, tax_rate=tax_rate)
            if any(value is not None for value in recurring.values()):
                account.change_recurring(now=now, **recurring)
            if low_balance_threshold is not UNCHANGED:
                account.change_low_balance_threshold(low_balance_threshold)
            return None, []

        _, position = self._write(account_id, decide)
        return Booking(account_id, position)

    # -- money -------------------------------------------------------------------
    def recharge(self, account_id: str, *, amount: object, reference: str = "", method: str = "",
                 currency: str | None = None, idempotency_key: str | None = None) -> Booking:
        """Money in. With an idempotency key, once per key: a repeat reports the first result."""
        request = {"amount": amount, "reference": reference, "method": method, "currency": currency}

        def decide(account: Account) -> tuple[Booking, list[Changed]]:
            money = self._money(amount, currency, account)
            number = account.recharge(money, reference=reference, method=method)
            return Booking(account_id, None, number, money.amount), self._claim(KeyKind.RECHARGE, account_id,
                                                                                idempotency_key, request, number,
                                                                                money.amount)

        return self._maybe_once(account_id, KeyKind.RECHARGE, idempotency_key, request, decide)

    def record_usage(
        self,
        account_id: str,
        *,
        idempotency_key: str,
        product: str,
        occurred_at: datetime | None = None,
        amount: object = None,
        unit_price: object = None,
        quantity: object = None,
        unit: str | None = None,
        application_id: str | None = None,
        app_key: str | None = None,
        currency: str | None = None,
        channel_account: str | None = None,
        application_name: str | None = None,
    ) -> Booking:
        """Books a priced usage charge (a positive cost, booked as DR), once per idempotency key."""
        key = parse_client_key(idempotency_key, "idempotency_key")
        request = {
            "product": product, "occurred_at": occurred_at, "amount": amount, "unit_price": unit_price,
            "quantity": quantity, "unit": unit, "application_id": application_id, "app_key": app_key,
            "currency": currency,
        }
        # Only when given: a repeat of a request made before these fields existed still matches.
        request.update({k: v for k, v in (("channel_account", channel_account),
                                          ("application_name", application_name)) if v is not None})

        def decide(account: Account) -> tuple[Booking, list[Changed]]:
            cost, qty, price = self._usage_cost(account, amount, unit_price, quantity, currency)
            number = account.record_usage(
                cost,
                product=product,
                application_id=application_id,
                app_key=app_key,
                quantity=qty,
                unit=unit,
                unit_price=price,
                occurred_at=occurred_at or self.clock(),
                idempotency_key=key,
                channel_account=channel_account,
                application_name=application_name,
            )
            claim = KeyClaim(account_id, KeyKind.USAGE.value, key, fingerprint(request), number, cost.amount)
            return Booking(account_id, None, number, cost.amount), [claim]

        return self._once(account_id, KeyKind.USAGE, key, request, decide)

    def post_charge(self, account_id: str, *, idempotency_key: str, kind: str, description: str,
                    amount: object, currency: str | None = None) -> Booking:
        key = parse_client_key(idempotency_key, "idempotency_key")
        if kind not in CHARGE_KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(CHARGE_KINDS)}", field="kind")
        request = {"kind": kind, "description": description, "amount": amount, "currency": currency}

        def decide(account: Account) -> tuple[Booking, list[Changed]]:
            money = self._money(amount, currency, account)
            numbers = NumberCounters(self, self.invoice_prefix)  # itemized mode invoices the charge at once
            number = account.post_charge(money, kind=kind, description=description, idempotency_key=key,
                                         now=self.clock(), number_for=numbers)
            claim = KeyClaim(account_id, KeyKind.CHARGE.value, key, fingerprint(request), number, money.amount)
            return Booking(account_id, None, number, money.amount), [claim, *numbers.changed]

        return self._once(account_id, KeyKind.CHARGE, key, request, decide)

    # -- holds -------------------------------------------------------------------
    def reserve(self, account_id: str, *, reservation_id: str, amount: object,
                expires_at: datetime | None = None, currency: str | None = None) -> Booking:
        rid = parse_client_key(reservation_id, "reservation_id")
        if expires_at is not None and expires_at <= self.clock():
            raise InvalidInput("expires_at has passed already: a hold must expire in the future", field="expires_at")

        def decide(account: Account) -> tuple[Booking, list[Changed]]:
            money = self._money(amount, currency, account)
            account.reserve(money, reservation_id=rid, expires_at=expires_at)
            claim = ClientKey(
                account_id=account_id, kind=KeyKind.RESERVATION.value, key=rid, request_fingerprint="",
                transaction_no=None, amount=money.amount, status=KeyStatus.OPEN.value,
            )
            return Booking(account_id, None, None, money.amount), [claim]

        def exists(claim: ClientKey) -> Booking:
            raise ReservationExists(f"reservation {rid!r} already exists", reservation_id=rid, status=claim.status)

        return self._claiming(account_id, KeyKind.RESERVATION, rid, decide, exists)

    def settle(self, account_id: str, reservation_id: str, *, amount: object, product: str,
               application_id: str | None = None, app_key: str | None = None, quantity: object = None,
               unit: str | None = None, currency: str | None = None, channel_account: str | None = None,
               application_name: str | None = None) -> Booking:
        """The held transaction succeeded: its final amount (at most the hold) becomes a usage charge."""

        def decide(account: Account) -> tuple[Booking, list[Changed]]:
            claim = self._open_reservation(account, reservation_id)
            money = self._money(amount, currency, account)
            number = account.settle(
                reservation_id, money, now=self.clock(), product=product, application_id=application_id,
                app_key=app_key, quantity=None if quantity is None else parse_amount(quantity, field="quantity"),
                unit=unit, channel_account=channel_account, application_name=application_name,
            )
            claim.close(KeyStatus.SETTLED, number, money.amount)
            return Booking(account_id, None, number, money.amount), [claim]

        return self._booked(account_id, decide)

    def release(self, account_id: str, reservation_id: str, *, reason: str) -> Booking:
        def decide(account: Account) -> tuple[Booking, list[Changed]]:
            claim = self._open_reservation(account, reservation_id)
            hold = account.holds[reservation_id]["amount"]
            account.release(reservation_id, reason=reason)
            claim.close(KeyStatus.RELEASED, None, hold)
            return Booking(account_id, None, None, hold), [claim]

        return self._booked(account_id, decide)

    def expire_reservations(self, account_id: str, now: datetime | None = None) -> list[str]:
        """Releases every hold of the account whose expires_at has passed."""
        moment = now or self.clock()

        def decide(account: Account) -> tuple[list[str], list[Changed]]:
            expired = account.expire_holds(moment)
            claims = [self._client_key(account_id, KeyKind.RESERVATION, rid) for rid in expired]
            for claim in claims:
                assert claim is not None, "every open hold has a claimed reservation key"
                claim.close(KeyStatus.RELEASED, None, claim.amount)
            return expired, [c for c in claims if c is not None]

        expired, _ = self._write(account_id, decide)
        return expired

    # -- batches -----------------------------------------------------------------
    @contextmanager
    def batch(self, extras: AppendExtras, accounts: Iterable[str] = (),
              keys: Iterable[tuple[str, KeyKind, str]] = (), warm: WarmAccounts | None = None) -> Iterator[LedgerBatch]:
        """Commands run inside this block decide against aggregates held in memory (each
        account loaded once, ``accounts`` all at once up front, its commands applied in
        order) and are saved when it ends, in
        one atomic write together with ``extras``. ``keys`` (account, kind, key) that the
        commands will use are looked up at once, so repeats are answered without a race.
        A command refused inside changes nothing; if the write loses a race (another
        writer, or a key claimed by an earlier write) it raises IntegrityError and nothing
        at all is written. With ``warm``, accounts come from it when they can and all of
        the batch's accounts go back to it once the batch is stored."""
        batch = LedgerBatch(extras)
        wanted_accounts = set(accounts)
        if warm is not None:
            batch.accounts = warm.take(wanted_accounts)
            batch.warm = set(batch.accounts)
        cold = wanted_accounts - batch.warm
        if cold:
            loaded = load_aggregates(self, (account_uuid(a) for a in cold))
            batch.accounts.update({a.account_id: a for a in loaded.values() if isinstance(a, Account)})
        wanted = [(a, k.value, key) for a, k, key in keys]
        if wanted:
            batch.keys = {(c.account_id, c.kind, c.key): c for c in self.recorder.claimed(wanted)}  # type: ignore[attr-defined]
        token = _active_batch.set(batch)
        try:
            yield batch
        finally:
            _active_batch.reset(token)
        if batch.changed:
            with appending_with(extras):
                recordings = self.save(*batch.changed.values())
            batch.position = recordings[-1].notification.id
            batch.recordings = recordings
        if warm is not None:
            warm.keep(batch.accounts.values())

    def _decide_in_batch(self, batch: LedgerBatch, account_id: str,
                         decide: Callable[[Account], tuple[T, list[Changed]]]) -> tuple[T, None]:
        account = batch.accounts.get(account_id)
        if account is None:
            account = batch.accounts[account_id] = self.account(account_id)
        try:
            result, others = decide(account)
        except LedgerError:
            if account_id not in batch.warm or account.pending_events:
                raise  # decided on a fresh load, or on state this batch's write will check
            # A refusal on a warm account this batch does not write: it stands only if a
            # fresh load refuses too (another writer may have changed the account).
            batch.warm.discard(account_id)
            account = batch.accounts[account_id] = self.account(account_id)
            result, others = decide(account)
        cause = current_cause()
        for claimed in others:
            if isinstance(claimed, KeyClaim):
                batch.keys[(claimed.account_id, claimed.kind, claimed.key)] = claimed
                batch.extras.claims.append(claimed)
        for aggregate in (account, *others):
            if isinstance(aggregate, KeyClaim):
                continue
            if isinstance(aggregate, ClientKey):
                batch.claims[aggregate.id] = aggregate
            for event in aggregate.pending_events:
                batch.extras.causes.setdefault((aggregate.id, event.originator_version), cause)
            if aggregate.pending_events:
                batch.changed[aggregate.id] = aggregate
        return result, None

    # -- machinery ---------------------------------------------------------------
    def _write(self, account_id: str, decide: Callable[[Account], tuple[T, list[Changed]]],
               on_conflict: Callable[[], None] | None = None, attempts: int = MAX_ATTEMPTS) -> tuple[T, int | None]:
        batch = _active_batch.get()
        if batch is not None:
            return self._decide_in_batch(batch, account_id, decide)
        for _ in range(attempts):
            account = self.account(account_id)
            result, others = decide(account)
            aggregates = [account, *(a for a in others if not isinstance(a, KeyClaim))]
            claims = [c for c in others if isinstance(c, KeyClaim)]
            if not any(aggregate.pending_events for aggregate in aggregates):
                return result, None  # nothing changed: no write, no table lock
            try:
                with appending_with((current_appending() or AppendExtras()).with_claims(claims)):
                    recordings = self.save(*aggregates)
            except IntegrityError:
                self.conflicts_retried += 1
                if on_conflict:
                    on_conflict()
                continue
            if isinstance(result, Booking):
                result = replace(result, after=Standing.of(account))  # type: ignore[assignment]
            return result, (recordings[-1].notification.id if recordings else None)
        raise ConcurrentModification(
            f"account {account_id!r} kept changing under this request; retry it", account_id=account_id
        )

    def _booked(self, account_id: str, decide: Callable[[Account], tuple[Booking, list[Changed]]]) -> Booking:
        booking, position = self._write(account_id, decide)
        return replace(booking, position=position)

    def _claiming(self, account_id: str, kind: KeyKind, key: str,
                  decide: Callable[[Account], tuple[Booking, list[Changed]]],
                  claimed_before: Callable[[ClientKey], Booking]) -> Booking:
        """Runs ``decide`` (which claims ``key`` as a ClientKey aggregate) unless the key
        was claimed before, in which case ``claimed_before`` answers."""

        def in_batch(batch: LedgerBatch) -> tuple[Booking | None, bool]:
            # Claimed earlier in this batch: known without a read (and not to be claimed
            # twice). The batch does not look these keys up in advance.
            known = batch.claims.get(client_key_uuid(account_id, kind, key))
            return (None if known is None else claimed_before(known)), False

        def look_up() -> Booking | None:
            claim = self._client_key(account_id, kind, key)
            return None if claim is None else claimed_before(claim)

        return self._keyed_write(account_id, decide, in_batch, look_up)

    @staticmethod
    def _claim(kind: KeyKind, account_id: str, key: str | None, request: dict[str, Any], number: str | None,
               amount: Decimal) -> list[Changed]:
        """The key claim a booking saves with its event; none without a key."""
        if key is None:
            return []
        return [KeyClaim(account_id, kind.value, key, fingerprint(request), number, amount)]

    def _maybe_once(self, account_id: str, kind: KeyKind, key: str | None, request: dict[str, Any],
                    decide: Callable[[Account], tuple[Booking, list[Changed]]], attempts: int = MAX_ATTEMPTS) -> Booking:
        """Once per key when the client gave one (see _once); else a plain booking."""
        if key is None:
            return self._booked(account_id, decide)
        return self._once(account_id, kind, parse_client_key(key, "idempotency_key"), request, decide, attempts)

    def _once(self, account_id: str, kind: KeyKind, key: str, request: dict[str, Any],
              decide: Callable[[Account], tuple[Booking, list[Changed]]], attempts: int = MAX_ATTEMPTS) -> Booking:
        """Books once per idempotency key; a repeat reports the first result, even when a
        concurrent twin won the race. The key is claimed by a row of the keys table
        written with the booking's event (commands/audit_log.py)."""

        def replay(claim: KeyClaim) -> Booking:
            if claim.fingerprint != fingerprint(request):
                raise IdempotencyKeyReused(f"{kind.value} key {key!r} was already used for a different request",
                                           key=key, transaction_no=claim.transaction_no)
            return Booking(account_id, None, claim.transaction_no, claim.amount, replayed=True)

        def in_batch(batch: LedgerBatch) -> tuple[Booking | None, bool]:
            # The batch looked its keys up in advance (or claimed them itself): it knows
            # them all; keys claimed by other writes meanwhile collide when it is saved.
            known = batch.keys.get((account_id, kind.value, key))
            return (None if known is None else replay(known)), True

        def look_up() -> Booking | None:
            claimed = self.recorder.claimed([(account_id, kind.value, key)])  # type: ignore[attr-defined]
            return replay(claimed[0]) if claimed else None

        return self._keyed_write(account_id, decide, in_batch, look_up, attempts)

    def _keyed_write(self, account_id: str, decide: Callable[[Account], tuple[Booking, list[Changed]]],
                     in_batch: Callable[[LedgerBatch], tuple[Booking | None, bool]],
                     look_up: Callable[[], Booking | None], attempts: int = MAX_ATTEMPTS) -> Booking:
        """Runs ``decide``, which claims a key, unless the key was claimed before: then the
        earlier answer (``look_up``, or ``in_batch``: the answer the batch knows and
        whether it knows every claimed key) stands.

        A new key, the usual case, costs no read: a duplicate collides on save and the
        retry looks it up. A refusal is looked up too, since a repeat of a request
        accepted earlier may be refused by today's state."""
        look_first = False

        def attempt(account: Account) -> tuple[Booking, list[Changed]]:
            batch = _active_batch.get()
            if batch is not None:
                earlier, knows_all = in_batch(batch)
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

        booking, position = self._write(account_id, attempt, on_conflict=conflicted, attempts=attempts)
        return booking if booking.replayed else replace(booking, position=position)

    def _legacy_claims(self) -> Iterator[KeyClaim]:
        """Usage and charge keys claimed as ClientKey aggregates, before the keys table
        existed: copied into it once, when it is created."""
        topic = get_topic(ClientKey.KeyClaimed)
        position = 0
        while True:
            notifications = self.recorder.select_notifications(start=position + 1, limit=1_000, topics=[topic])
            if not notifications:
                return
            for n in notifications:
                claimed = self.mapper.to_domain_event(n)
                if claimed.kind in (KeyKind.USAGE.value, KeyKind.CHARGE.value):
                    yield KeyClaim(claimed.account_id, claimed.kind, claimed.key, claimed.request_fingerprint,
                                   claimed.transaction_no, claimed.amount)
            position = notifications[-1].id

    def _client_key(self, account_id: str, kind: KeyKind, key: str) -> ClientKey | None:
        claim_id = client_key_uuid(account_id, kind, key)
        batch = _active_batch.get()
        if batch is not None and claim_id in batch.claims:
            return batch.claims[claim_id]
        try:
            claim = self.repository.get(claim_id)
        except AggregateNotFoundError:
            return None
        assert isinstance(claim, ClientKey)
        if batch is not None:
            batch.claims[claim_id] = claim  # later commands of the batch must see its changes
        return claim

    def _open_reservation(self, account: Account, reservation_id: str) -> ClientKey:
        claim = self._client_key(account.account_id, KeyKind.RESERVATION, reservation_id)
        if claim is None:
            raise ReservationNotFound(f"no reservation {reservation_id!r}", reservation_id=reservation_id)
        if reservation_id not in account.holds:
            raise ReservationClosed(
                f"reservation {reservation_id!r} is already {claim.status}",
                reservation_id=reservation_id,
                status=claim.status,
            )
        return claim

    @staticmethod
    def _money(amount: object, currency: str | None, account: Account) -> Money:
        return Money(parse_amount(amount), parse_currency(currency or account.currency))

    def _usage_cost(self, account: Account, amount: object, unit_price: object, quantity: object,
                    currency: str | None) -> tuple[Money, Decimal | None, Decimal | None]:
        if (amount is None) == (unit_price is None):
            raise InvalidInput("give exactly one of amount or unit_price", field="amount")
        qty = None if quantity is None else parse_quantity(quantity)
        if unit_price is None:
            return self._money(amount, currency, account), qty, None
        if qty is None:
            raise InvalidInput("unit_price needs a quantity", field="quantity")
        price = parse_unit_price(unit_price)
        return Money.priced(qty, price, currency or account.currency), qty, price

