"""One handler per command: accounts, money in and out, holds.

A handler turns its command into a decision of the Account and says how it is kept
once (idempotency keys, reservation claims); the unit of work it is given writes it,
alone or in a batch (commands/unit_of_work.py). Invoicing handlers: commands/invoicing.py.
"""

from __future__ import annotations

from eventsourcing.persistence import IntegrityError

from commands.bookings import Booking
from commands.invoicing import NumberCounters, itemized_wording
from commands.test_clocks import load_test_clock
from commands.unit_of_work import Changed, UnitOfWork, money_of
from ledger_core.account import CHARGE_KINDS, Account
from ledger_core.client_key import ClientKey, KeyKind, KeyStatus
from ledger_core.commands import (
    UNCHANGED,
    ExpireHolds,
    OpenAccount,
    PostCharge,
    Recharge,
    RecordUsage,
    Release,
    Reserve,
    Settle,
    UpdateAccount,
)
from ledger_core.errors import AccountExists, ConcurrentModification, InvalidInput, ReservationExists
from ledger_core.money import Money


# -- accounts ------------------------------------------------------------------------
def open_account(command: OpenAccount, unit: UnitOfWork) -> Booking:
    """Opens the account; on a test clock, at the clock's time and attached to it in the same write."""
    clock = None if command.test_clock_id is None else load_test_clock(unit.app, command.test_clock_id)
    account = Account.open(**command.settings(), opened_at=clock.frozen_time if clock else unit.clock())
    exists = AccountExists(f"account {account.account_id!r} already exists", account_id=account.account_id)
    if account.id in unit.app.repository:
        raise exists
    if clock is not None:
        clock.attach(account.account_id)
    try:
        recordings = unit.save_alone(account, *([clock] if clock else []))
    except IntegrityError:
        if account.id in unit.app.repository:
            raise exists from None
        raise ConcurrentModification("the test clock changed meanwhile; try again") from None
    return Booking(account.account_id, recordings[-1].notification.id)


def update_account(command: UpdateAccount, unit: UnitOfWork) -> Booking:
    """Applies any subset of the settings changes at once: all of them or none."""
    now = unit.clock()
    c = command

    def decide(account: Account) -> tuple[None, list[Changed]]:
        if c.credit_limit is not None:
            account.change_credit_limit(c.credit_limit)
        if c.billing_mode is not None:
            account.change_billing_mode(c.billing_mode)
        if c.invoice_mode is not None:
            account.change_invoice_mode(c.invoice_mode)
        if c.usage_policy is not None:
            account.change_usage_policy(c.usage_policy)
        if c.payer is not None or c.tax_rate is not None:
            account.change_billing_details(payer=c.payer, tax_rate=c.tax_rate)
        recurring = c.recurring()
        if any(value is not None for value in recurring.values()):
            account.change_recurring(now=now, **recurring)
        if c.low_balance_threshold is not UNCHANGED:
            account.change_low_balance_threshold(c.low_balance_threshold)
        return None, []

    _, position = unit.write(c.account_id, decide)
    return Booking(c.account_id, position)


# -- money ---------------------------------------------------------------------------
def recharge(command: Recharge, unit: UnitOfWork) -> Booking:
    """Money in. With an idempotency key, once per key: a repeat reports the first result."""
    c = command
    request = {"amount": c.amount, "reference": c.reference, "method": c.method, "currency": c.currency}
    if c.purchaser_email is not None:  # only when given: a repeat of a request made before it still matches
        request["purchaser_email"] = c.purchaser_email

    def decide(account: Account) -> tuple[Booking, list[Changed]]:
        money = money_of(c.amount, c.currency, account)
        number = account.recharge(money, reference=c.reference, method=c.method, purchaser_email=c.purchaser_email)
        claims = unit.claim(KeyKind.RECHARGE, c.account_id, c.idempotency_key, request, number, money.amount)
        return Booking(c.account_id, None, number, money.amount), claims

    return unit.maybe_once(c.account_id, KeyKind.RECHARGE, c.idempotency_key, request, decide)


def record_usage(command: RecordUsage, unit: UnitOfWork) -> Booking:
    """Books a priced usage charge (a positive cost, booked as DR), once per idempotency key."""
    c = command
    request = {"occurred_at": c.occurred_at, "amount": c.amount, "unit_price": c.unit_price, "currency": c.currency,
               **c.line.fingerprinted()}

    def decide(account: Account) -> tuple[Booking, list[Changed]]:
        currency = c.currency or account.currency
        if c.unit_price is None:
            cost = money_of(c.amount, c.currency, account)  # type: ignore[arg-type]  # one of the two is given
        else:
            cost = Money.priced(c.line.quantity, c.unit_price, currency)  # type: ignore[arg-type]
        occurred_at = c.occurred_at or unit.clock()
        charged = account.usage_cost(cost, c.line, c.unit_price, occurred_at) if account.allowances else cost.amount
        number = account.record_usage(cost, c.line, unit_price=c.unit_price, occurred_at=occurred_at,
                                      idempotency_key=c.idempotency_key)
        claims = unit.claim(KeyKind.USAGE, c.account_id, c.idempotency_key, request, number, charged)
        return Booking(c.account_id, None, number, charged), claims

    return unit.once(c.account_id, KeyKind.USAGE, c.idempotency_key, request, decide)


def post_charge(command: PostCharge, unit: UnitOfWork) -> Booking:
    c = command
    if c.kind not in CHARGE_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(CHARGE_KINDS)}", field="kind")
    request = {"kind": c.kind, "description": c.description, "amount": c.amount, "currency": c.currency}

    def decide(account: Account) -> tuple[Booking, list[Changed]]:
        money = money_of(c.amount, c.currency, account)
        numbers = NumberCounters(unit.app)  # itemized mode invoices the charge at once
        wording = itemized_wording(unit.app, account)
        number = account.post_charge(money, kind=c.kind, description=c.description, idempotency_key=c.idempotency_key,
                                     now=unit.clock(), number_for=numbers, wording=wording)
        claims = unit.claim(KeyKind.CHARGE, c.account_id, c.idempotency_key, request, number, money.amount)
        return Booking(c.account_id, None, number, money.amount), [*claims, *numbers.changed]

    return unit.once(c.account_id, KeyKind.CHARGE, c.idempotency_key, request, decide)


# -- holds ---------------------------------------------------------------------------
def reserve(command: Reserve, unit: UnitOfWork) -> Booking:
    c = command
    if c.expires_at is not None and c.expires_at <= unit.clock():
        raise InvalidInput("expires_at has passed already: a hold must expire in the future", field="expires_at")

    def decide(account: Account) -> tuple[Booking, list[Changed]]:
        money = money_of(c.amount, c.currency, account)
        account.reserve(money, reservation_id=c.reservation_id, expires_at=c.expires_at)
        claim = ClientKey(
            account_id=c.account_id, kind=KeyKind.RESERVATION.value, key=c.reservation_id, request_fingerprint="",
            transaction_no=None, amount=money.amount, status=KeyStatus.OPEN.value,
        )
        return Booking(c.account_id, None, None, money.amount), [claim]

    def exists(claim: ClientKey) -> Booking:
        raise ReservationExists(f"reservation {c.reservation_id!r} already exists", reservation_id=c.reservation_id,
                                status=claim.status)

    return unit.claiming(c.account_id, KeyKind.RESERVATION, c.reservation_id, decide, exists)


def settle(command: Settle, unit: UnitOfWork) -> Booking:
    """The held transaction succeeded: its final amount (at most the hold) becomes a usage charge."""
    c = command

    def decide(account: Account) -> tuple[Booking, list[Changed]]:
        claim = unit.open_reservation(account, c.reservation_id)
        money = money_of(c.amount, c.currency, account)
        number = account.settle(c.reservation_id, money, c.line, now=unit.clock())
        claim.close(KeyStatus.SETTLED, number, money.amount)
        return Booking(c.account_id, None, number, money.amount), [claim]

    return unit.booked(c.account_id, decide)


def release(command: Release, unit: UnitOfWork) -> Booking:
    c = command

    def decide(account: Account) -> tuple[Booking, list[Changed]]:
        claim = unit.open_reservation(account, c.reservation_id)
        hold = account.holds[c.reservation_id].amount
        account.release(c.reservation_id, reason=c.reason)
        claim.close(KeyStatus.RELEASED, None, hold)
        return Booking(c.account_id, None, None, hold), [claim]

    return unit.booked(c.account_id, decide)


def expire_holds(command: ExpireHolds, unit: UnitOfWork) -> list[str]:
    """Releases every hold of the account whose expires_at has passed; returns their ids."""
    moment = command.now or unit.clock()

    def decide(account: Account) -> tuple[list[str], list[Changed]]:
        expired = account.expire_holds(moment)
        claims = []
        for reservation_id in expired:
            claim = unit.hold_claim(account.account_id, reservation_id)
            claim.close(KeyStatus.RELEASED, None, claim.amount)
            claims.append(claim)
        return expired, claims

    expired, _ = unit.write(command.account_id, decide)
    return expired
