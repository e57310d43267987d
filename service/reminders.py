"""Bulk payment reminders: which invoices get one, what it says, and queueing it in the outbox.

Only approved invoices that are unpaid or partially paid get a reminder (never drafts,
voids or paid ones). A request names an idempotency key: repeating it queues no second
reminder for an invoice it already queued (the outbox's unique (batch_key, invoice_id)),
and the same key with different filters is refused. A repeat does look again, so an
invoice that started to match since the first call is queued then.

Amounts are the read model's exact Decimals, printed with ``format_amount``; the text is
written once, when queued, and says as of which day its figures are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import date
from typing import Any

from ledger_core.client_key import fingerprint, parse_client_key
from ledger_core.cycles import Bound, local_days
from ledger_core.errors import IdempotencyKeyReused, InvalidInput, LedgerError
from ledger_core.invoicing import DueStatus, InvoiceStatus, PaymentStatus, due_status
from ledger_core.money import format_amount
from persistence.reminder_outbox import NewReminder
from projections.rows import InvoiceFilter, InvoiceRow
from projections.views import MAX_PAGE_ROWS
from service.documents import account_days
from service.ledger_service import LedgerService

MAX_REMINDERS_PER_REQUEST = 10_000  # one request, one bounded amount of mail and memory
SELECT_PAGE_ROWS = MAX_PAGE_ROWS
WRITE_PAGE_ROWS = 200  # reminders per outbox transaction
REMINDABLE = (PaymentStatus.UNPAID.value, PaymentStatus.PARTIALLY_PAID.value)


class TooManyReminders(LedgerError):
    """The filters pick more invoices than one request may remind: narrow them."""

    code = "too_many_reminders"
    category = "invalid"


@dataclass(frozen=True)
class ReminderFilter:
    """The invoice list's filters that make sense for reminders (status is always approved)."""

    account_id: str | None = None
    number: str | None = None
    payment_status: str | None = None  # unpaid or partially_paid; None: both
    due_status: str | None = None  # decided against ``today``
    period_from: Bound | None = None
    period_to: Bound | None = None

    def checked(self) -> ReminderFilter:
        if self.payment_status is not None and self.payment_status not in REMINDABLE:
            raise InvalidInput(f"payment_status must be one of {', '.join(REMINDABLE)}: paid invoices get no reminder",
                               field="payment_status")
        if self.due_status is not None and self.due_status not in {s.value for s in DueStatus}:
            raise InvalidInput(f"due_status must be one of {', '.join(s.value for s in DueStatus)}",
                               field="due_status")
        low, high = self.period_from, self.period_to
        if low and high and ((low.moment and high.moment and low.moment >= high.moment) or
                             (low.first_day and high.last_day and low.first_day > high.last_day)):
            raise InvalidInput("period_from must be before period_to", field="period_from")
        return self

    def as_requested(self) -> dict[str, Any]:
        """The filters as an idempotency key keeps them: a moment as the time it was before
        days were accepted, so a repeat of an earlier request still matches."""
        def plain(bound: Bound | None) -> Any:
            if bound is None or bound.moment is not None:
                return bound and bound.moment
            return f"{bound.first_day}..{bound.last_day}"

        return {**asdict(self), "period_from": plain(self.period_from), "period_to": plain(self.period_to)}


@dataclass(frozen=True)
class Queued:
    matched: int  # invoices the filters picked
    queued: int  # new outbox rows
    already_queued: int  # rows this idempotency key had queued before
    skipped_no_email: int  # the payer has no email address


def queue_reminders(service: LedgerService, filters: ReminderFilter, idempotency_key: str,
                    today: date | None = None) -> Queued:
    """Queues one reminder per matching invoice, a page per transaction."""
    key = parse_client_key(idempotency_key, "idempotency_key")
    filters = filters.checked()
    # ``today`` is part of what was asked only when the caller named it.
    request_fingerprint = fingerprint({**filters.as_requested(), "today": today})
    first = service.reminder_outbox.fingerprint_of(key)
    if first is not None and first != request_fingerprint:
        raise IdempotencyKeyReused("this idempotency_key was used with other filters", idempotency_key=key)
    now = service.clock()
    # due status by the named account's today (a test clock's, if attached), else the real one
    day = today or service.now_for(filters.account_id).date()
    invoices = select_invoices(service, filters, day)
    accounts, today_of = _Accounts(service), account_days(service)
    queued = skipped = 0
    for start in range(0, len(invoices), WRITE_PAGE_ROWS):
        page: list[NewReminder] = []
        for invoice in invoices[start:start + WRITE_PAGE_ROWS]:
            payer, time_zone = accounts.of(invoice.account_id)
            recipients = emails_of(payer)
            if not recipients:
                skipped += 1
                continue
            subject, body = compose(invoice, payer, time_zone, today or today_of(invoice.account_id))
            assert invoice.number is not None and invoice.due_on is not None, "approved invoices have both"
            page.append(NewReminder(
                batch_key=key, request_fingerprint=request_fingerprint, invoice_id=invoice.invoice_id,
                invoice_number=invoice.number, account_id=invoice.account_id, recipients=recipients, subject=subject,
                body=body, currency=invoice.currency, amount_outstanding=invoice.outstanding, due_on=invoice.due_on,
            ))
        if page:
            queued += service.reminder_outbox.add(page, now)
    matched = len(invoices)
    return Queued(matched=matched, queued=queued, already_queued=matched - skipped - queued, skipped_no_email=skipped)


def select_invoices(service: LedgerService, filters: ReminderFilter, today: date) -> list[InvoiceRow]:
    """Every approved, not fully paid invoice the filters pick, oldest first; refused
    (before anything is queued) when that is more than one request may remind."""
    base = InvoiceFilter(account_id=filters.account_id, number=filters.number, status=InvoiceStatus.APPROVED.value,
                         due_status=filters.due_status, period_from=filters.period_from,
                         period_to=filters.period_to, today=today.isoformat())
    invoices: list[InvoiceRow] = []
    read = 0
    for payment_status in [filters.payment_status] if filters.payment_status else REMINDABLE:
        before: int | None = None
        while True:
            rows, before = service.view.invoices(replace(base, payment_status=payment_status, before_position=before),
                                                 SELECT_PAGE_ROWS)
            read += len(rows)
            # The exact Decimal decides, not the stored status: SQLite compares its text
            # amounts as text, and can label a paid invoice partially paid.
            invoices.extend(row for row in rows if row.outstanding > 0)
            if read > MAX_REMINDERS_PER_REQUEST:
                raise TooManyReminders(
                    f"the filters pick more than {MAX_REMINDERS_PER_REQUEST} invoices; narrow them "
                    "(account_id, due_status, period_from/period_to)", max=MAX_REMINDERS_PER_REQUEST)
            if before is None:
                break
    return sorted(invoices, key=lambda row: row.created_position)


class _Accounts:
    """Payer and time zone of each account (read model), read once per request."""

    def __init__(self, service: LedgerService) -> None:
        self.service = service
        self.known: dict[str, tuple[dict[str, Any], str]] = {}

    def of(self, account_id: str) -> tuple[dict[str, Any], str]:
        if account_id not in self.known:
            row = self.service.account_row(account_id)
            self.known[account_id] = (row.payer, row.time_zone)
        return self.known[account_id]


def emails_of(payer: dict[str, Any]) -> list[str]:
    emails = payer.get("emails") or []
    return [e.strip() for e in emails if isinstance(e, str) and e.strip()]


def compose(invoice: InvoiceRow, payer: dict[str, Any], time_zone: str, today: date) -> tuple[str, str]:
    """The reminder's subject and plain-text body; every amount exact."""
    assert invoice.due_on is not None
    currency, due = invoice.currency, date.fromisoformat(invoice.due_on)

    def money(amount: Any) -> str:
        return f"{currency} {format_amount(amount)}"

    subject = f"Payment reminder: {invoice.number} ({money(invoice.outstanding)} outstanding, due {invoice.due_on})"
    overdue = due_status(due, invoice.outstanding, today) is DueStatus.OVERDUE
    due_text = f"{invoice.due_on} (overdue by {(today - due).days} days)" if overdue else f"{invoice.due_on} (not yet due)"
    greeting = ", ".join(shown for k in ("name", "organization") if (shown := str(payer.get(k) or "").strip())) or "customer"
    lines = [
        f"Dear {greeting},",
        "",
        f"invoice {invoice.number} is not fully paid yet.",
        "",
        f"Invoice:      {invoice.number}",
        f"Period:       {period_text(invoice, time_zone)}",
        f"Total:        {money(invoice.total)}",
        f"Paid:         {money(invoice.paid)}",
        f"Outstanding:  {money(invoice.outstanding)}",
        f"Due date:     {due_text}",
        "",
        f"Amounts as of {today.isoformat()}. If you have paid since, please ignore this reminder.",
    ]
    return subject, "\n".join(lines) + "\n"


def period_text(invoice: InvoiceRow, time_zone: str) -> str:
    """The invoiced days in the account's time zone (ledger_core.cycles.local_days)."""
    first, last = local_days(invoice.period_start, invoice.period_end, time_zone)
    return first.isoformat() if last == first else f"{first.isoformat()} to {last.isoformat()}"