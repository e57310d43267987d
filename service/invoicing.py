"""Invoicing use cases that span accounts or read an account's open cycle.

- ``close_due_cycles``: the scheduler's job: every account, every cycle ended by then.
- ``future_invoice`` and ``predict_invoice``: what the open cycle will bill.
- ``issue_manual_invoice``: a manual invoice, with the payment that came with it.
- ``preview_usage_invoice``: what a manual usage invoice of a date range would bill.

Prediction method (documented in docs/money.md): charges posted in the open cycle count
as they are (a subscription is posted once per cycle, so it is not extrapolated);
usage so far is extrapolated linearly by elapsed time to the cycle's end; tax at the
account's rate is added the way the invoice will add it (rounded once).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from commands.bookings import Booking
from commands.invoicing import default_wording
from ledger_core.account import Account
from ledger_core.commands import CloseCycles, InvoiceTopup, InvoiceUsage, MeterRunningFee
from ledger_core.cycles import cycle_start, local_date, local_days, next_boundary
from ledger_core.errors import CloseInFuture, InvariantViolation
from ledger_core.figures import ZERO
from ledger_core.invoicing import Wording, issue_dates
from ledger_core.money import AMOUNT_QUANTUM, tax_on
from projections.orders import OrderFilter
from projections.rows import InvoiceFilter
from projections.subscriptions import SubscriptionFilter
from service.exports import iter_orders, iter_subscriptions
from service.ledger_service import LedgerService

ACCOUNTS_PER_PAGE = 500


def issue_manual_invoice(service: LedgerService, command: InvoiceTopup | InvoiceUsage) -> tuple[str, bool]:
    """Issues a top-up or usage invoice and records its ``paid`` with it in the same
    write. Returns the invoice id and whether this call issued it: a repeat of the
    payment id (or of the idempotency key) issues nothing and answers with the invoice
    the first call issued."""
    booking: Booking = service.handle(command)
    if booking.invoice_id is not None:
        return booking.invoice_id, not booking.replayed
    paid = command.paid
    if not booking.replayed or paid is None:
        raise InvariantViolation("only a payment id's repeat leaves the invoice unnamed")
    service.projector.catch_up()  # the first call's writer may have stopped before projecting
    payment = service.view.payment_by_id(command.account_id, paid.payment_id)
    if payment is None or not payment.allocations:
        raise InvariantViolation("a claim is written with its invoice's payment")
    return payment.allocations[0]["invoice_id"], False


def invoice_defaults(service: LedgerService) -> Wording:
    """The issuer's wording as every invoice issued now would take it."""
    return default_wording(service.commands)


def preview_usage_invoice(service: LedgerService, account_id: str, date_from: date, date_to: date
                          ) -> dict[str, Any]:
    """The records and lines a manual usage invoice of the range would bill now, and its
    totals, from the same decision the invoice takes (so what POST then issues equals it,
    unless usage arrives in between)."""
    account = service.commands.account(account_id)
    records, plan = account.preview_usage_invoice(date_from, date_to)
    dates = issue_dates(local_date(service.now_for(account_id), account.time_zone), account.payment_terms_days)
    period_start, period_end = account.days_as_period(date_from, date_to)
    return {
        "account_id": account_id, "currency": account.currency, "date_from": date_from, "date_to": date_to,
        "period_start": period_start, "period_end": period_end, "invoice_date": dates.issued, "due_date": dates.due,
        "records": [{**vars(r), "date": date.fromisoformat(r.date)} for r in records],
        "lines": [{**line, "line_no": n} for n, line in enumerate(plan.lines, start=1)],
        "subtotal": plan.subtotal, "tax": plan.tax, "total": plan.total,
    }


@dataclass(frozen=True)
class OpenCycle:
    period_start: datetime
    period_end: datetime
    cut_off: date  # the last local day whose usage the cycle's invoice takes


def open_cycle(account: Account) -> OpenCycle:
    end = next_boundary(account.closed_through, account.cycle_anchor_day, account.time_zone)
    return OpenCycle(account.closed_through, end, local_days(account.closed_through, end, account.time_zone)[1])


def _all_accounts(service: LedgerService) -> Iterator[str]:
    after = None
    while page := service.view.account_ids(after, ACCOUNTS_PER_PAGE):
        yield from page
        after = page[-1]


def close_due_cycles(service: LedgerService, as_of: datetime) -> dict[str, list[str]]:
    """Closes every cycle that ended by ``as_of``, account by account; returns the invoices made.
    Running it twice closes nothing twice: each account knows the cycles it closed."""
    made: dict[str, list[str]] = {}
    for account_id in _all_accounts(service):
        if service.account_row(account_id).test_clock_id is not None:
            continue  # its cycles close on its test clock's time, when the clock is advanced
        invoices = close_account_cycles(service, account_id, as_of)
        if invoices:
            made[account_id] = invoices
    return made


def close_account_cycles(service: LedgerService, account_id: str, as_of: datetime | None = None) -> list[str]:
    """Closes the account's cycles that ended by ``as_of`` (None: its now), its cloud phones
    still running metered up to then first; returns the invoices made."""
    now = service.now_for(account_id)
    if as_of is not None and as_of > now:  # refused before anything is metered
        raise CloseInFuture(f"cycles are closed up to now at the latest, not {as_of.isoformat()}", as_of=as_of, now=now)
    meter_running_phones(service, account_id, as_of or now)
    made: list[str] = service.handle(CloseCycles(account_id, as_of))
    return made


def meter_running_phones(service: LedgerService, account_id: str, as_of: datetime) -> None:
    """Cloud phones still powered up are metered up to the start of the cycle ``as_of`` is
    in, so the cycles closing now bill their running time although no power-down came."""
    account = service.commands.account(account_id)
    until = cycle_start(as_of, account.cycle_anchor_day, account.time_zone)
    for row in iter_orders(service, OrderFilter(account_id=account_id, powered_on=True)):
        if row.powered_on_since is not None and row.powered_on_since < until:
            service.handle(MeterRunningFee(account_id, row.order_id, until))


def future_invoice(service: LedgerService, account_id: str) -> dict[str, Any]:
    account = service.commands.account(account_id)
    cycle = open_cycle(account)
    if account.invoice_mode == "none" or not account.cycle_running:
        expected = "none"
    else:
        expected = "draft" if account.drafts_need_approval else "approved"
    return {
        "account_id": account_id, "currency": account.currency, "period_start": cycle.period_start,
        "period_end": cycle.period_end, "cut_off_date": cycle.cut_off, "expected_status": expected,
        "invoice_mode": account.invoice_mode, "cycle_running": account.cycle_running,
    }


def predict_invoice(service: LedgerService, account_id: str, now: datetime | None = None) -> dict[str, Any]:
    moment = now or service.now_for(account_id)
    account = service.commands.account(account_id)
    cycle = open_cycle(account)
    start_day, end_day = local_date(cycle.period_start, account.time_zone), cycle.cut_off
    usage = charges = ZERO
    for entry in account.book.unbilled.values():
        if start_day.isoformat() <= entry.date <= end_day.isoformat():
            if entry.kind == "usage":
                usage += entry.amount
            else:
                charges += entry.amount
    elapsed = min(max(moment - cycle.period_start, timedelta(0)), cycle.period_end - cycle.period_start)
    length = cycle.period_end - cycle.period_start
    ratio = Decimal(length.total_seconds()) / Decimal(elapsed.total_seconds()) if elapsed else Decimal(0)
    usage_estimate = (usage * ratio).quantize(AMOUNT_QUANTUM) if elapsed else ZERO
    renewals = _renewals_in(service, account_id, start_day, end_day)
    subtotal = charges + usage_estimate + renewals
    tax = tax_on(subtotal, account.tax_rate, account.currency)
    return {
        "account_id": account_id, "currency": account.currency, "period_start": cycle.period_start,
        "period_end": cycle.period_end, "as_of": moment, "usage_so_far": usage, "charges_so_far": charges,
        "amount_so_far": usage + charges, "subscription_renewals": renewals, "estimated_subtotal": subtotal,
        "estimated_tax": tax, "estimated_total": subtotal + tax,
        "method": "charges as posted + usage so far x (cycle length / elapsed time) + subscription renewals due "
                  "in the cycle at their plans' current prices + tax at the account's rate",
    }


def _renewals_in(service: LedgerService, account_id: str, first_day: date, last_day: date) -> Decimal:
    """What the account's active subscriptions renewing from ``first_day`` to ``last_day``
    (local days) will charge: each item at its plan's current price, as a renewal takes it."""
    total, prices = ZERO, dict[str, Decimal]()
    for row in iter_subscriptions(service, SubscriptionFilter(account_id=account_id, status="active")):
        due = row.next_payment_date
        if due is None or not first_day.isoformat() <= due <= last_day.isoformat():
            continue
        for item in row.items:
            if item["plan_id"] not in prices:
                prices[item["plan_id"]] = service.commands.plan(item["plan_id"]).current.price
            total += prices[item["plan_id"]] * item["quantity"]
    return total


def invoice_dashboard(service: LedgerService, query: InvoiceFilter) -> dict[str, Any]:
    """Counts per status (over every currency) and, per currency, the same counts with their
    sums: amounts in different currencies are never added together."""
    view = service.view
    groups = view.invoice_dashboard(query)
    overdue = view.invoice_dashboard(replace(query, due_status="overdue"))
    currencies = sorted({g["currency"] for g in groups})
    return {**_dashboard_counts(groups, overdue), "groups": groups,
            "currencies": [{"currency": c, **_dashboard_counts(*(
                [g for g in rows if g["currency"] == c] for rows in (groups, overdue))),
                **_dashboard_sums([g for g in groups if g["currency"] == c])} for c in currencies]}


def _dashboard_counts(groups: list[dict[str, Any]], overdue: list[dict[str, Any]]) -> dict[str, int]:
    def count(**match: str) -> int:
        return sum(g["invoices"] for g in groups if all(g[k] == v for k, v in match.items()))

    return {"total_invoices": count(), "approved": count(status="approved"), "not_approved": count(status="draft"),
            "void": count(status="void"), "paid": count(status="approved", payment_status="paid"),
            "unsettled": count(status="approved") - count(status="approved", payment_status="paid"),
            "overdue": sum(g["invoices"] for g in overdue)}


def _dashboard_sums(groups: list[dict[str, Any]]) -> dict[str, Decimal]:
    """Of one currency's approved invoices: their totals, what was paid, what is still owed."""
    approved = [g for g in groups if g["status"] == "approved"]
    return {"approved_total": sum((g["total"] for g in approved), Decimal(0)),
            "paid_amount": sum((g["paid"] for g in approved), Decimal(0)),
            "outstanding": sum((g["outstanding"] for g in approved), Decimal(0))}
