"""Invoicing commands: cycle closes, approval, voids, manual invoices, payments, refunds.

A mixin of the ``Ledger`` application, so every command goes through the same
``_write`` (load, decide, save atomically, retry a lost race). Commands that issue an
invoice also save the issuer's number counter in that write: see InvoiceNumbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from commands.audit_log import KeyClaim
from commands.bookings import Booking
from ledger_core.account import Account
from ledger_core.client_key import KeyKind, fingerprint, parse_client_key
from ledger_core.errors import CloseInFuture, InvalidInput, InvoiceNotFound
from ledger_core.invoice_numbers import InvoiceNumbers, invoice_numbers_uuid
from ledger_core.invoicing import INVOICE_NUMBER_PREFIX, parse_invoice_id
from ledger_core.money import Money

if TYPE_CHECKING:
    from commands.ledger import Ledger

# Every issue in the deployment takes its number from one counter per year, so writers
# that issue at the same moment race on it; they retry more often than other commands.
INVOICING_ATTEMPTS = 30


class NumberCounters:
    """Takes numbers for one write attempt, loading (or starting) each year's counter once."""

    def __init__(self, ledger: Ledger, prefix: str) -> None:
        self.ledger = ledger
        self.prefix = prefix
        self.by_year: dict[int, InvoiceNumbers] = {}

    def __call__(self, issued: date) -> str:
        counter = self.by_year.get(issued.year)
        if counter is None:
            try:
                counter = self.ledger.repository.get(invoice_numbers_uuid(self.prefix, issued.year))
            except AggregateNotFoundError:
                counter = InvoiceNumbers(self.prefix, issued.year)  # two first issues of a year collide and retry
            assert isinstance(counter, InvoiceNumbers)
            self.by_year[issued.year] = counter
        return counter.take()

    @property
    def changed(self) -> list[Aggregate]:
        return [c for c in self.by_year.values() if c.pending_events]


def account_of_invoice(invoice_id: str) -> str:
    parsed = parse_invoice_id(invoice_id)
    if parsed is None:
        raise InvoiceNotFound(f"no invoice {invoice_id!r}", invoice_id=invoice_id)
    return parsed[0]


@dataclass(frozen=True)
class PaymentReceived:
    """The payment that came with a manual invoice ("create and claim")."""

    payment_id: str
    method: str = ""
    reference: str = ""
    received_at: datetime | None = None


class InvoicingCommands:
    invoice_prefix = INVOICE_NUMBER_PREFIX

    def _invoicing_write(self: Ledger, account_id: str, act: Any) -> tuple[Any, int | None]:
        """Runs ``act(account, number_for)`` in a write that also saves the counters it used."""

        def decide(account: Account) -> tuple[Any, list[Any]]:
            numbers = NumberCounters(self, self.invoice_prefix)
            result = act(account, numbers)
            return result, numbers.changed

        return self._write(account_id, decide, attempts=INVOICING_ATTEMPTS)

    def close_cycles(self: Ledger, account_id: str, now: datetime | None = None) -> list[str]:
        """Closes every cycle of the account that ended by ``now``; returns the invoice ids made.
        ``now`` may lie in the past (a close that was late), never in the future: a cycle
        closed early would invoice a period that has not happened and date its invoice ahead."""
        clock_now = self.clock()
        moment = now or clock_now
        if moment > clock_now:
            raise CloseInFuture(f"cycles are closed up to now at the latest, not {moment.isoformat()}",
                                as_of=moment, now=clock_now)
        made, _ = self._invoicing_write(account_id, lambda a, n: a.close_cycles(now=moment, number_for=n))
        return made

    def approve_invoice(self: Ledger, invoice_id: str) -> str:
        now = self.clock()
        number, _ = self._invoicing_write(account_of_invoice(invoice_id),
                                          lambda a, n: a.approve_invoice(invoice_id, now=now, number_for=n))
        return number

    def void_invoice(self: Ledger, invoice_id: str) -> None:
        def decide(account: Account) -> tuple[None, list[Aggregate]]:
            account.void_invoice(invoice_id)
            return None, []

        self._write(account_of_invoice(invoice_id), decide)

    def invoice_usage(self: Ledger, account_id: str, *, date_from: date, date_to: date, terms: str = "",
                      notes: str = "", description: str = "", paid: PaymentReceived | None = None,
                      idempotency_key: str | None = None) -> Booking:
        """A manual postpaid invoice of the unbilled usage of a date range; with ``paid``,
        the payment received for it is recorded in the same write (create and claim)."""
        now = self.clock()
        request = {"type": "usage", "date_from": date_from, "date_to": date_to, "terms": terms, "notes": notes}
        if description:  # only when given: a repeat of a request made before it was kept still matches
            request["description"] = description
        return self._manual_invoice(account_id, request, paid, idempotency_key, lambda a, n: a.invoice_usage(
            date_from, date_to, now=now, number_for=n, terms=terms, notes=notes, description=description))

    def invoice_topup(self: Ledger, account_id: str, *, amount: object, description: str, terms: str = "",
                      notes: str = "", currency: str | None = None, paid: PaymentReceived | None = None,
                      idempotency_key: str | None = None) -> Booking:
        """A manual prepaid invoice for credits; with ``paid``, as ``invoice_usage``."""
        now = self.clock()
        request = {"type": "topup", "amount": amount, "description": description, "terms": terms, "notes": notes,
                   "currency": currency}
        return self._manual_invoice(account_id, request, paid, idempotency_key, lambda a, n: a.invoice_topup(
            self._money(amount, currency, a), description=description, now=now, number_for=n, terms=terms,
            notes=notes))

    def _manual_invoice(self: Ledger, account_id: str, request: dict[str, Any], paid: PaymentReceived | None,
                        idempotency_key: str | None, issue: Callable[[Account, NumberCounters], str]) -> Booking:
        """Issues the invoice, and pays what it asks for when ``paid`` is given, in one
        write: there is never an invoice without the payment that came with it.

        The payment id, else ``idempotency_key``, makes the request idempotent: a repeat
        is answered with ``replayed``, with the invoice id when the key was an
        idempotency key (a payment id's repeat: the read model's payment names it)."""
        if paid is None:
            return self._unpaid_manual_invoice(account_id, request, idempotency_key, issue)
        key = parse_client_key(paid.payment_id, "payment_id")
        request = {**request, "method": paid.method, "reference": paid.reference, "received_at": paid.received_at}

        def decide(account: Account) -> tuple[Booking, list[Any]]:
            numbers = NumberCounters(self, self.invoice_prefix)
            invoice_id = issue(account, numbers)
            owed, number = account.owed_on(invoice_id), account.next_transaction_no
            if owed <= 0:
                raise InvalidInput("the account's credit paid this invoice already: create it without a claim",
                                   field="claim")
            account.record_payment(Money(owed, account.currency), payment_id=key, invoice_id=invoice_id,
                                   method=paid.method, reference=paid.reference,
                                   received_at=paid.received_at or self.clock())
            claim = KeyClaim(account_id, KeyKind.PAYMENT.value, key, fingerprint(request), number, owed)
            return Booking(account_id, None, number, owed, invoice_id=invoice_id), [*numbers.changed, claim]

        return self._once(account_id, KeyKind.PAYMENT, key, request, decide, attempts=INVOICING_ATTEMPTS)

    def _unpaid_manual_invoice(self: Ledger, account_id: str, request: dict[str, Any], idempotency_key: str | None,
                               issue: Callable[[Account, NumberCounters], str]) -> Booking:
        if idempotency_key is None:
            invoice_id, position = self._invoicing_write(account_id, issue)
            return Booking(account_id, position, invoice_id=invoice_id)
        key = parse_client_key(idempotency_key, "idempotency_key")

        def decide(account: Account) -> tuple[Booking, list[Any]]:
            numbers = NumberCounters(self, self.invoice_prefix)
            invoice_id = issue(account, numbers)
            claim = KeyClaim(account_id, KeyKind.INVOICE.value, key, fingerprint(request), invoice_id,
                             account.owed_on(invoice_id))
            return Booking(account_id, None, invoice_id=invoice_id), [*numbers.changed, claim]

        booking = self._once(account_id, KeyKind.INVOICE, key, request, decide, attempts=INVOICING_ATTEMPTS)
        if booking.replayed:  # the claim keeps the invoice id where other keys keep a transaction number
            return replace(booking, invoice_id=booking.transaction_no, transaction_no=None)
        return booking

    def record_payment(self: Ledger, account_id: str, *, payment_id: str, amount: object,
                       invoice_id: str | None = None, method: str = "", reference: str = "",
                       received_at: datetime | None = None, currency: str | None = None) -> Booking:
        """Applies a payment once per payment id; a repeat reports the first result."""
        key = parse_client_key(payment_id, "payment_id")
        request = {"amount": amount, "invoice_id": invoice_id, "method": method, "reference": reference,
                   "received_at": received_at, "currency": currency}

        def decide(account: Account) -> tuple[Booking, list[Aggregate]]:
            money = self._money(amount, currency, account)
            number = account.next_transaction_no
            account.record_payment(money, payment_id=key, invoice_id=invoice_id, method=method, reference=reference,
                                   received_at=received_at or self.clock())
            claim = KeyClaim(account_id, KeyKind.PAYMENT.value, key, fingerprint(request), number, money.amount)
            return Booking(account_id, None, number, money.amount), [claim]

        return self._once(account_id, KeyKind.PAYMENT, key, request, decide)

    def refund_overpayment(self: Ledger, account_id: str, *, amount: object, reference: str,
                           currency: str | None = None, idempotency_key: str | None = None) -> Booking:
        """Pays unapplied credit back. With an idempotency key, once per key."""
        if not reference:
            raise InvalidInput("a refund needs a reference", field="reference")
        request = {"amount": amount, "reference": reference, "currency": currency}

        def decide(account: Account) -> tuple[Booking, list[Any]]:
            money = self._money(amount, currency, account)
            number = account.refund_overpayment(money, reference=reference)
            return Booking(account_id, None, number, money.amount), self._claim(KeyKind.REFUND, account_id,
                                                                                idempotency_key, request, number,
                                                                                money.amount)

        return self._maybe_once(account_id, KeyKind.REFUND, idempotency_key, request, decide)
