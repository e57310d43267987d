"""Delivery through a real SMTP server: one message per row, failures kept and retried."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest

from ledger_core.commands import RecordPayment
from persistence.database import DatabaseConfig
from service import reminder_sender
from service.ledger_service import LedgerService
from service.reminder_sender import PAID_BEFORE_SENDING, SenderSettings, run_sender, send_batch
from service.reminders import ReminderFilter, queue_reminders
from service.settings import Settings
from tests.reminders.conftest import free_port
from tests.reminders.scenario import DUE_ON, make_invoices


def send_once(service, settings):
    return run_sender(service, settings, threading.Event(), once=True)


def text_of(received):
    return received.message.get_content().replace("\r\n", "\n")  # SMTP lines end in CRLF


def rows_by_invoice(service):
    rows, _ = service.reminder_outbox.page(None, 500)
    return {row.invoice_id: row for row in rows}


def test_one_message_per_row_to_the_payer(service, clock, invoices, smtp, sender_settings):
    queue_reminders(service, ReminderFilter(), "run-1")

    result = send_once(service, sender_settings)

    assert (result.claimed, result.sent, result.failed) == (2, 2, 0)
    assert len(smtp.received) == 2
    by_subject = {r.message["Subject"]: r for r in smtp.received}
    acme_number = invoices.number(service, invoices.partly_paid)
    acme = by_subject[f"Payment reminder: {acme_number} (SGD 46.50 outstanding, due {DUE_ON})"]
    assert acme.recipients == ["billing@acme.test", "cfo@acme.test"]
    assert acme.sender == "billing@ledger.test"
    body = text_of(acme)
    assert "Total:        SGD 66.50\nPaid:         SGD 20.00\nOutstanding:  SGD 46.50\n" in body
    gamma_number = invoices.number(service, invoices.unpaid)
    gamma = by_subject[f"Payment reminder: {gamma_number} (SGD 12.345678 outstanding, due {DUE_ON})"]
    assert gamma.recipients == ["pay@gamma.test"]
    assert "Outstanding:  SGD 12.345678\n" in text_of(gamma)
    rows = rows_by_invoice(service)
    assert {(r.status, r.attempts, r.sent_at) for r in rows.values()} == {("sent", 1, clock.now)}
    assert acme.message["X-Ledger-Reminder-Id"] == str(rows[invoices.partly_paid].id)
    # Nothing is sent twice.
    assert send_once(service, sender_settings).claimed == 0
    assert len(smtp.received) == 2


def test_a_refused_connection_marks_rows_failed_and_they_are_sent_later(service, clock, invoices, smtp,
                                                                       sender_settings):
    queue_reminders(service, ReminderFilter(), "run-1")
    smtp.stop()

    result = send_once(service, sender_settings)

    assert (result.claimed, result.sent, result.failed) == (2, 0, 2)
    rows = rows_by_invoice(service).values()
    assert {(r.status, r.attempts) for r in rows} == {("failed", 1)}
    assert all("ConnectionRefusedError" in (r.last_error or "") for r in rows)
    # Not before the retry delay ...
    clock.advance(sender_settings.retry_delay_s - 1)
    assert send_once(service, sender_settings).claimed == 0
    # ... then every row is delivered, once.
    smtp.start()
    clock.advance(1)
    assert send_once(service, sender_settings).sent == 2
    assert len(smtp.received) == 2
    assert {(r.status, r.attempts, r.last_error) for r in rows_by_invoice(service).values()} == {("sent", 2, None)}


def test_no_retry_after_the_last_attempt(service, clock, invoices, sender_settings):
    queue_reminders(service, ReminderFilter(account_id="acme"), "run-1")
    settings = replace(sender_settings, smtp_port=free_port(), max_attempts=2)

    for _ in range(3):
        send_once(service, settings)
        clock.advance(settings.retry_delay_s)

    [row] = rows_by_invoice(service).values()
    assert (row.status, row.attempts) == ("exhausted", 2)
    exhausted, _ = service.reminder_outbox.page("exhausted", 10)
    assert [r.id for r in exhausted] == [row.id]
    assert service.reminder_outbox.page("failed", 10)[0] == []


def test_an_invoice_paid_before_sending_gets_no_reminder(service, invoices, smtp, sender_settings):
    queue_reminders(service, ReminderFilter(), "run-1")
    service.handle(RecordPayment("gamma", payment_id="gamma-p1", amount="12.345678"))

    result = send_once(service, sender_settings)

    assert (result.sent, result.cancelled) == (1, 1)
    assert [r.recipients for r in smtp.received] == [["billing@acme.test", "cfo@acme.test"]]
    gamma = rows_by_invoice(service)[invoices.unpaid]
    assert (gamma.status, gamma.last_error) == ("cancelled", PAID_BEFORE_SENDING)


def test_claims_are_disjoint_and_hidden_for_the_lease(service, clock, invoices):
    queue_reminders(service, ReminderFilter(), "run-1")
    outbox, now = service.reminder_outbox, clock.now
    lease_end = now + timedelta(minutes=10)

    first = outbox.claim(now, lease_end, 1, 3)
    second = outbox.claim(now, lease_end, 1, 3)

    assert len(first) == len(second) == 1 and first[0].id != second[0].id
    assert outbox.claim(now, lease_end, 10, 3) == []
    # A sender that died holding them: its rows come back when the lease ends.
    assert len(outbox.claim(lease_end, lease_end + timedelta(minutes=10), 10, 3)) == 2


def test_rows_left_when_half_the_lease_is_gone_are_handed_back(service, clock, invoices, smtp, sender_settings,
                                                                monkeypatch):
    queue_reminders(service, ReminderFilter(), "run-1")
    # The monotonic clock the sender measures its lease with: the first message goes out at
    # once, the second finds more than half of the lease gone.
    readings = iter([0.0, 0.0, sender_settings.lease_s])
    monkeypatch.setattr(reminder_sender, "monotonic", lambda: next(readings))

    result = send_batch(service, sender_settings)

    assert (result.claimed, result.sent, result.released) == (2, 1, 1)
    assert len(smtp.received) == 1
    statuses = sorted((r.status, r.attempts) for r in rows_by_invoice(service).values())
    assert statuses == [("pending", 0), ("sent", 1)]
    # Handed back: due again at once, for this sender or another.
    monkeypatch.undo()
    assert send_once(service, sender_settings).sent == 1
    assert len(smtp.received) == 2


@pytest.mark.postgres
def test_a_row_locked_by_another_sender_is_skipped_not_waited_for(postgres_schema: DatabaseConfig, clock):
    service = LedgerService(Settings(database=postgres_schema), clock=clock)
    try:
        invoices = make_invoices(service, clock)
        queue_reminders(service, ReminderFilter(), "run-1")
        outbox = service.reminder_outbox
        acme_id = rows_by_invoice(service)[invoices.partly_paid].id
        with outbox.datastore.transaction(commit=False) as cursor:  # another sender, mid-claim
            cursor.execute(f"SELECT id FROM {outbox.table} WHERE id = %s FOR UPDATE", (acme_id,))
            claimed = outbox.claim(clock.now, clock.now + timedelta(minutes=10), 10, 3)
        assert [row.invoice_id for row in claimed] == [invoices.unpaid]
    finally:
        service.close()


def test_settings_from_the_environment():
    settings = SenderSettings.from_env({
        "LEDGER_SMTP_HOST": "mail.test", "LEDGER_SMTP_PORT": "587", "LEDGER_SMTP_FROM": "ar@ledger.test",
        "LEDGER_SMTP_STARTTLS": "true", "LEDGER_SMTP_USER": "u", "LEDGER_SMTP_PASSWORD": "p",
        "LEDGER_REMINDER_MAX_ATTEMPTS": "7",
    })
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_from, settings.smtp_starttls) == \
        ("mail.test", 587, "ar@ledger.test", True)
    assert (settings.smtp_user, settings.max_attempts, settings.batch_rows) == ("u", 7, 50)
    with pytest.raises(ValueError, match="LEDGER_REMINDER_BATCH_ROWS"):
        SenderSettings.from_env({"LEDGER_REMINDER_BATCH_ROWS": "100000"})
    with pytest.raises(ValueError, match="LEDGER_SMTP_PASSWORD"):
        SenderSettings.from_env({"LEDGER_SMTP_USER": "u"})
