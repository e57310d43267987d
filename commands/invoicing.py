"""Invoicing handlers: cycle closes, approval, voids, manual invoices, payments, refunds.

Commands that issue an invoice also save the issuer's number counter in the same write
(NumberCounters): every issue in the deployment takes its number from one counter per
year, so writers that issue at the same moment race on it and retry more often.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from commands.bookings import Booking
from commands.unit_of_work import Changed, UnitOfWork, money_of
from ledger_core.account import Account
from ledger_core.client_key import KeyKind, parse_client_key
from ledger_core.commands import (
    ApproveInvoice,
    CloseCycles,
    InvoiceTopup,
    InvoiceUsage,
    PaymentReceived,
    RecordPayment,
    RefundOverpayment,
    SetInvoiceDefaults,
    VoidInvoice,
)
from ledger_core.errors import CloseInFuture, ConcurrentModification, InvalidInput, InvariantViolation, InvoiceNotFound
from ledger_core.figures import InvoiceMode
from ledger_core.invoice_defaults import INVOICE_DEFAULTS_ID, InvoiceDefaults
from ledger_core.invoice_numbers import InvoiceNumbers, invoice_numbers_uuid
from ledger_core.invoicing import INVOICE_NUMBER_PREFIX, NO_WORDING, Wording, parse_invoice_id
from ledger_core.money import Money

INVOICING_ATTEMPTS = 30
DEFAULTS_ATTEMPTS = 5
Issue = Callable[[Account, "NumberCounters"], str]


class NumberCounters:
    """Takes numbers for one write attempt, loading (or starting) each year's counter once."""

    def __init__(self, app: Application[UUID], prefix: str = INVOICE_NUMBER_PREFIX) -> None:
        self.app = app
        self.prefix = prefix
        self.by_year: dict[int, InvoiceNumbers] = {}

    def __call__(self, issued: date) -> str:
        counter = self.by_year.get(issued.year)
        if counter is None:
            try:
                counter = self.app.repository.get(invoice_numbers_uuid(self.prefix, issued.year))
            except AggregateNotFoundError:
                counter = InvoiceNumbers(self.prefix, issued.year)  # two first issues of a year collide and retry
            if not isinstance(counter, InvoiceNumbers):
                raise InvariantViolation(f"the {issued.year} number counter is a {type(counter).__name__}")
            self.by_year[issued.year] = counter
        return counter.take()

    @property
    def changed(self) -> list[Aggregate]:
        return [c for c in self.by_year.values() if c.pending_events]


def invoice_defaults(app: Application[UUID]) -> InvoiceDefaults | None:
    """The issuer's wording as last set, or None if an admin never set it (read only)."""
    try:
        found = app.repository.get(INVOICE_DEFAULTS_ID, deepcopy_from_cache=False)
    except AggregateNotFoundError:
        return None
    if not isinstance(found, InvoiceDefaults):
        raise InvariantViolation(f"the invoice defaults are a {type(found).__name__}")
    return found


def default_wording(app: Application[UUID]) -> Wording:
    defaults = invoice_defaults(app)
    return NO_WORDING if defaults is None else defaults.wording


def itemized_wording(app: Application[UUID], account: Account) -> Wording:
    """The wording a charge's own invoice takes: the issuer's in itemized mode (which invoices
    each charge at once), none otherwise (nothing is issued, so nothing is read)."""
    return default_wording(app) if account.invoice_mode == InvoiceMode.ITEMIZED else NO_WORDING


def set_invoice_defaults(command: SetInvoiceDefaults, unit: UnitOfWork) -> Wording:
    """Two admins who change the wording at once: the second write loads the first's and retries."""
    for _ in range(DEFAULTS_ATTEMPTS):
        try:
            defaults = unit.app.repository.get(INVOICE_DEFAULTS_ID)
        except AggregateNotFoundError:
            defaults = InvoiceDefaults()
        if not isinstance(defaults, InvoiceDefaults):
            raise InvariantViolation(f"the invoice defaults are a {type(defaults).__name__}")
        defaults.change(command.terms, command.notes)
        if not defaults.pending_events:
            return defaults.wording
        try:
            unit.save_alone(defaults)
        except IntegrityError:
            continue
        return defaults.wording
    raise ConcurrentModification("the invoice defaults changed under every attempt; try again")


def account_of_invoice(invoice_id: str) -> str:
    parsed = parse_invoice_id(invoice_id)
    if parsed is None:
        raise InvoiceNotFound(f"no invoice {invoice_id!r}", invoice_id=invoice_id)
    return parsed[0]


def _invoicing_write(unit: UnitOfWork, account_id: str, act: Callable[[Account, NumberCounters], Any]
                     ) -> tuple[Any, int | None]:
    """Runs ``act(account, number_for)`` in a write that also saves the counters it used."""

    def decide(account: Account) -> tuple[Any, list[Changed]]:
        numbers = NumberCounters(unit.app)
        result = act(account, numbers)
        return result, list(numbers.changed)

    return unit.write(account_id, decide, attempts=INVOICING_ATTEMPTS)


def close_cycles(command: CloseCycles, unit: UnitOfWork) -> list[str]:
    """Closes every cycle of the account that ended by ``as_of``; returns the invoice ids made.
    ``as_of`` may lie in the past (a close that was late), never in the future: a cycle
    closed early would invoice a period that has not happened and date its invoice ahead."""
    clock_now = unit.clock()
    moment = command.as_of or clock_now
    if moment > clock_now:
        raise CloseInFuture(f"cycles are closed up to now at the latest, not {moment.isoformat()}",
                            as_of=moment, now=clock_now)
    wording = default_wording(unit.app)
    made, _ = _invoicing_write(unit, command.account_id,
                               lambda a, n: a.close_cycles(now=moment, number_for=n, wording=wording))
    return made


def approve_invoice(command: ApproveInvoice, unit: UnitOfWork) -> str:
    now = unit.clock()
    number, _ = _invoicing_write(unit, account_of_invoice(command.invoice_id),
                                 lambda a, n: a.approve_invoice(command.invoice_id, now=now, number_for=n))
    return number


def void_invoice(command: VoidInvoice, unit: UnitOfWork) -> None:
    def decide(account: Account) -> tuple[None, list[Changed]]:
        account.void_invoice(command.invoice_id)
        return None, []

    unit.write(account_of_invoice(command.invoice_id), decide)


def invoice_usage(command: InvoiceUsage, unit: UnitOfWork) -> Booking:
    """A manual postpaid invoice of the unbilled usage of a date range; with ``paid``,
    the payment received for it is recorded in the same write (create and claim)."""
    c, now = command, unit.clock()
    wording = _wording(unit, c)
    return _manual_invoice(unit, c.account_id, _as_requested(c, type="usage", date_from=c.date_from,
                                                             date_to=c.date_to), c.paid, c.idempotency_key,
                           lambda a, n: a.invoice_usage(c.date_from, c.date_to, now=now, number_for=n, wording=wording,
                                                        description=c.description, invoice_date=c.invoice_date,
                                                        due_date=c.due_date))


def invoice_topup(command: InvoiceTopup, unit: UnitOfWork) -> Booking:
    """A manual prepaid invoice for credits; with ``paid``, as ``invoice_usage``."""
    c, now = command, unit.clock()
    wording = _wording(unit, c)
    request = _as_requested(c, type="topup", amount=c.amount, currency=c.currency)
    return _manual_invoice(unit, c.account_id, request, c.paid, c.idempotency_key, lambda a, n: a.invoice_topup(
        money_of(c.amount, c.currency, a), description=c.description, now=now, number_for=n, wording=wording,
        invoice_date=c.invoice_date, due_date=c.due_date))


def _wording(unit: UnitOfWork, command: InvoiceUsage | InvoiceTopup) -> Wording:
    if command.terms is not None and command.notes is not None:
        return Wording(command.terms, command.notes)
    return default_wording(unit.app).overridden(command.terms, command.notes)


def _as_requested(command: InvoiceUsage | InvoiceTopup, **fields: Any) -> dict[str, Any]:
    """The request an idempotency key stands for, as it was first kept: terms and notes
    not given as "", and the fields added later (description of a usage invoice, the
    dates) only when given, so a repeat of a request made before them still matches."""
    c = command
    request = {**fields, "terms": c.terms or "", "notes": c.notes or ""}
    if c.description or fields["type"] == "topup":
        request["description"] = c.description
    request.update({name: value for name, value in (("invoice_date", c.invoice_date), ("due_date", c.due_date))
                    if value is not None})
    return request


def _manual_invoice(unit: UnitOfWork, account_id: str, request: dict[str, Any], paid: PaymentReceived | None,
                    idempotency_key: str | None, issue: Issue) -> Booking:
    """Issues the invoice, and pays what it asks for when ``paid`` is given, in one
    write: there is never an invoice without the payment that came with it.

    The payment id, else ``idempotency_key``, makes the request idempotent: a repeat
    is answered with ``replayed``, with the invoice id when the key was an
    idempotency key (a payment id's repeat: the read model's payment names it)."""
    if paid is None:
        return _unpaid_manual_invoice(unit, account_id, request, idempotency_key, issue)
    key = parse_client_key(paid.payment_id, "payment_id")
    request = {**request, "method": paid.method, "reference": paid.reference, "received_at": paid.received_at}

    def decide(account: Account) -> tuple[Booking, list[Changed]]:
        numbers = NumberCounters(unit.app)
        invoice_id = issue(account, numbers)
        owed, number = account.owed_on(invoice_id), account.next_transaction_no
        if owed <= 0:
            raise InvalidInput("the account's credit paid this invoice already: create it without a claim",
                               field="claim")
        account.record_payment(Money(owed, account.currency), payment_id=key, invoice_id=invoice_id,
                               method=paid.method, reference=paid.reference,
                               received_at=paid.received_at or unit.clock())
        claims = unit.claim(KeyKind.PAYMENT, account_id, key, request, number, owed)
        return Booking(account_id, None, number, owed, invoice_id=invoice_id), [*numbers.changed, *claims]

    return unit.once(account_id, KeyKind.PAYMENT, key, request, decide, attempts=INVOICING_ATTEMPTS)


def _unpaid_manual_invoice(unit: UnitOfWork, account_id: str, request: dict[str, Any], idempotency_key: str | None,
                           issue: Issue) -> Booking:
    if idempotency_key is None:
        invoice_id, position = _invoicing_write(unit, account_id, issue)
        return Booking(account_id, position, invoice_id=invoice_id)
    key = idempotency_key

    def decide(account: Account) -> tuple[Booking, list[Changed]]:
        numbers = NumberCounters(unit.app)
        invoice_id = issue(account, numbers)
        claims = unit.claim(KeyKind.INVOICE, account_id, key, request, invoice_id, account.owed_on(invoice_id))
        return Booking(account_id, None, invoice_id=invoice_id), [*numbers.changed, *claims]

    booking = unit.once(account_id, KeyKind.INVOICE, key, request, decide, attempts=INVOICING_ATTEMPTS)
    if booking.replayed:  # the claim keeps the invoice id where other keys keep a transaction number
        return replace(booking, invoice_id=booking.transaction_no, transaction_no=None)
    return booking


def record_payment(command: RecordPayment, unit: UnitOfWork) -> Booking:
    """Applies a payment once per payment id; a repeat reports the first result."""
    c = command
    request = {"amount": c.amount, "invoice_id": c.invoice_id, "method": c.method, "reference": c.reference,
               "received_at": c.received_at, "currency": c.currency}

    def decide(account: Account) -> tuple[Booking, list[Changed]]:
        money = money_of(c.amount, c.currency, account)
        number = account.next_transaction_no
        account.record_payment(money, payment_id=c.payment_id, invoice_id=c.invoice_id, method=c.method,
                               reference=c.reference, received_at=c.received_at or unit.clock())
        claims = unit.claim(KeyKind.PAYMENT, c.account_id, c.payment_id, request, number, money.amount)
        return Booking(c.account_id, None, number, money.amount), claims

    return unit.once(c.account_id, KeyKind.PAYMENT, c.payment_id, request, decide)


def refund_overpayment(command: RefundOverpayment, unit: UnitOfWork) -> Booking:
    """Pays unapplied credit back. With an idempotency key, once per key."""
    c = command
    request = {"amount": c.amount, "reference": c.reference, "currency": c.currency}

    def decide(account: Account) -> tuple[Booking, list[Changed]]:
        money = money_of(c.amount, c.currency, account)
        number = account.refund_overpayment(money, reference=c.reference)
        claims = unit.claim(KeyKind.REFUND, c.account_id, c.idempotency_key, request, number, money.amount)
        return Booking(c.account_id, None, number, money.amount), claims

    return unit.maybe_once(c.account_id, KeyKind.REFUND, c.idempotency_key, request, decide)
