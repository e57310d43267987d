"""Which invoices get a reminder, the filters, and idempotent repeats (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from ledger_core.cycles import Bound
from ledger_core.errors import IdempotencyKeyReused, InvalidInput
from service import reminders
from service.reminders import ReminderFilter, TooManyReminders, queue_reminders
from tests.reminders.scenario import DUE_ON


def outbox(service, status=None):
    rows, _ = service.reminder_outbox.page(status, 500)
    return {row.invoice_id: row for row in rows}


def test_only_approved_unpaid_or_partially_paid_invoices_get_one(service, invoices):
    queued = queue_reminders(service, ReminderFilter(), "run-1")

    assert (queued.matched, queued.queued, queued.already_queued, queued.skipped_no_email) == (3, 2, 0, 1)
    rows = outbox(service)
    assert set(rows) == {invoices.partly_paid, invoices.unpaid}  # not the paid, the draft or the one without email
    acme, gamma = rows[invoices.partly_paid], rows[invoices.unpaid]
    assert acme.amount_outstanding == Decimal("46.50") and gamma.amount_outstanding == Decimal("12.345678")
    assert acme.recipients == ["billing@acme.test", "cfo@acme.test"]
    assert (acme.status, acme.attempts, acme.due_on, acme.currency) == ("pending", 0, DUE_ON, "SGD")
    number = invoices.number(service, invoices.partly_paid)
    assert acme.invoice_number == number
    assert acme.subject == f"Payment reminder: {number} (SGD 46.50 outstanding, due {DUE_ON})"
    assert "Period:       2026-11-01 to 2026-11-30\n" in acme.body  # the account's zone: Asia/Singapore
    assert "Total:        SGD 66.50\nPaid:         SGD 20.00\nOutstanding:  SGD 46.50\n" in acme.body
    assert "Outstanding:  SGD 12.345678\n" in gamma.body


@pytest.mark.parametrize(("filters", "today", "expected"), [
    (ReminderFilter(due_status="overdue"), date(2026, 12, 16), set()),  # due that day: not overdue yet
    (ReminderFilter(due_status="overdue"), date(2026, 12, 17), {"partly_paid", "unpaid"}),
    (ReminderFilter(due_status="not_due"), date(2026, 12, 10), {"partly_paid", "unpaid"}),
    (ReminderFilter(payment_status="partially_paid"), None, {"partly_paid"}),
    (ReminderFilter(payment_status="unpaid"), None, {"unpaid"}),
    (ReminderFilter(account_id="gamma"), None, {"unpaid"}),
    (ReminderFilter(account_id="beta"), None, set()),
    (ReminderFilter(period_to=Bound(moment=datetime(2026, 10, 1, tzinfo=timezone.utc))), None, set()),
    (ReminderFilter(period_from=Bound(moment=datetime(2026, 11, 15, tzinfo=timezone.utc))), None,
     {"partly_paid", "unpaid"}),
    (ReminderFilter(period_from=Bound.of_days("2026-11"), period_to=Bound.of_days("2026-11")), None,
     {"partly_paid", "unpaid"}),
    (ReminderFilter(period_to=Bound.of_days("2026-10-31")), None, set()),
])
def test_filters_pick_like_the_invoice_list(service, invoices, filters, today, expected):
    queue_reminders(service, filters, "run-1", today)

    assert set(outbox(service)) == {getattr(invoices, name) for name in expected}


def test_number_filter(service, invoices):
    number = invoices.number(service, invoices.unpaid)

    assert queue_reminders(service, ReminderFilter(number=number), "run-1").queued == 1
    assert set(outbox(service)) == {invoices.unpaid}


def test_overdue_reminder_says_so(service, invoices):
    queue_reminders(service, ReminderFilter(account_id="acme"), "run-1", date(2026, 12, 20))

    assert "Due date:     2026-12-16 (overdue by 4 days)\n" in outbox(service)[invoices.partly_paid].body


def test_the_same_key_queues_nothing_new(service, invoices):
    first = queue_reminders(service, ReminderFilter(), "run-1")
    again = queue_reminders(service, ReminderFilter(), "run-1")

    assert (first.queued, again.queued, again.already_queued) == (2, 0, 2)
    assert len(outbox(service)) == 2
    rows, _ = service.reminder_outbox.page(None, 500)
    assert len(rows) == 2
    # Another key is another request: it queues again.
    assert queue_reminders(service, ReminderFilter(), "run-2").queued == 2


def test_the_same_key_with_other_filters_is_refused(service, invoices):
    queue_reminders(service, ReminderFilter(), "run-1")

    with pytest.raises(IdempotencyKeyReused):
        queue_reminders(service, ReminderFilter(account_id="acme"), "run-1")


@pytest.mark.parametrize("filters", [
    ReminderFilter(payment_status="paid"),
    ReminderFilter(due_status="late"),
    ReminderFilter(period_from=Bound(moment=datetime(2026, 12, 1, tzinfo=timezone.utc)),
                   period_to=Bound(moment=datetime(2026, 11, 1, tzinfo=timezone.utc))),
    ReminderFilter(period_from=Bound.of_days("2026-12"), period_to=Bound.of_days("2026-11")),
])
def test_bad_filters_are_refused(service, invoices, filters):
    with pytest.raises(InvalidInput):
        queue_reminders(service, filters, "run-1")
    assert outbox(service) == {}


def test_more_than_the_maximum_queues_nothing(service, invoices, monkeypatch):
    monkeypatch.setattr(reminders, "MAX_REMINDERS_PER_REQUEST", 1)

    with pytest.raises(TooManyReminders):
        queue_reminders(service, ReminderFilter(), "run-1")
    assert outbox(service) == {}


def test_pages_of_selection_and_writes(service, invoices, monkeypatch):
    monkeypatch.setattr(reminders, "SELECT_PAGE_ROWS", 1)
    monkeypatch.setattr(reminders, "WRITE_PAGE_ROWS", 1)

    queued = queue_reminders(service, ReminderFilter(), "run-1")

    assert (queued.queued, queued.skipped_no_email) == (2, 1)
    assert set(outbox(service)) == {invoices.partly_paid, invoices.unpaid}
