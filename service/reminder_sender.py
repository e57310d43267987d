"""Sends queued mail (payment reminders, receipts) through the SMTP adapter
(adapters/smtp.py) and records what happened.

Each reminder and each receipt is queued once (its outbox row is unique). Delivery is at
least once: a row is marked sent right after the server took it, so a sender that dies
between the two sends that one message again once its lease ends. A repeat carries the
same Message-ID (a receipt's is its transaction number's), which mail systems use to drop
duplicates, and ``X-Ledger-Reminder-Id`` or ``X-Ledger-Receipt`` for a mailbox rule.
"""

from __future__ import annotations

import email.policy
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from time import monotonic  # the lease is measured on it, never on the (settable) ledger clock
from typing import Any

from adapters.smtp import MailNotSent, SmtpMailer, SmtpServer
from exporters.pdf import render_receipt_pdf
from ledger_core.invoicing import InvoiceStatus
from ledger_core.money import format_amount
from persistence.mail_outbox import LeasedOutbox
from persistence.receipt_outbox import ReceiptRow
from persistence.reminder_outbox import MAX_CLAIM_ROWS, ReminderRow
from service.documents import issuer_of, receipt_document
from service.ledger_service import LedgerService
from service.settings import InvalidSetting, int_setting

log = logging.getLogger(__name__)

# A message takes a few round trips, each bounded by the SMTP timeout; a claim must
# outlast the messages still in flight when the sender stops using it (at half the lease).
LEASE_PER_TIMEOUT = 20
# Headers stay on one line up to RFC 5322's hard limit: folding a long subject right after
# "Subject:" makes some readers show it with a leading space.
HEADER_POLICY = email.policy.SMTP.clone(max_line_length=998)
PAID_BEFORE_SENDING = "the invoice was paid (or is no longer open) before the reminder was sent"


@dataclass(frozen=True)
class SenderSettings:
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_from: str = "billing@localhost"
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_timeout_s: int = 30
    batch_rows: int = 50  # reminders claimed (and sent over one connection) at a time
    max_attempts: int = 5  # a row that failed this often is exhausted: not tried again
    retry_delay_s: int = 300  # wait after a failed attempt
    lease_s: int = 600  # a claimed row is hidden from other senders this long
    poll_interval_s: int = 30  # `ledger send-reminders` sleeps this long when nothing is due

    def __post_init__(self) -> None:
        if self.lease_s < LEASE_PER_TIMEOUT * self.smtp_timeout_s:
            raise InvalidSetting(f"LEDGER_REMINDER_LEASE_S must be at least {LEASE_PER_TIMEOUT} x LEDGER_SMTP_TIMEOUT_S")
        if bool(self.smtp_user) != bool(self.smtp_password):
            raise InvalidSetting("set both LEDGER_SMTP_USER and LEDGER_SMTP_PASSWORD, or neither")

    @property
    def server(self) -> SmtpServer:
        return SmtpServer(self.smtp_host, self.smtp_port, self.smtp_starttls, self.smtp_user, self.smtp_password,
                          self.smtp_timeout_s)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SenderSettings:
        env = os.environ if environ is None else environ
        starttls = (env.get("LEDGER_SMTP_STARTTLS") or "false").strip().lower()
        if starttls not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"LEDGER_SMTP_STARTTLS must be true or false, got {starttls!r}")
        return cls(
            smtp_host=env.get("LEDGER_SMTP_HOST") or "127.0.0.1",
            smtp_port=int_setting(env, "LEDGER_SMTP_PORT", 25, 1, 65535),
            smtp_from=env.get("LEDGER_SMTP_FROM") or "billing@localhost",
            smtp_starttls=starttls in ("true", "1", "yes"),
            smtp_user=env.get("LEDGER_SMTP_USER") or None,
            smtp_password=env.get("LEDGER_SMTP_PASSWORD") or None,
            smtp_timeout_s=int_setting(env, "LEDGER_SMTP_TIMEOUT_S", 30, 1, 300),
            batch_rows=int_setting(env, "LEDGER_REMINDER_BATCH_ROWS", 50, 1, MAX_CLAIM_ROWS),
            max_attempts=int_setting(env, "LEDGER_REMINDER_MAX_ATTEMPTS", 5, 1, 100),
            retry_delay_s=int_setting(env, "LEDGER_REMINDER_RETRY_DELAY_S", 300, 1, 7 * 86_400),
            lease_s=int_setting(env, "LEDGER_REMINDER_LEASE_S", 600, 60, 86_400),
            poll_interval_s=int_setting(env, "LEDGER_REMINDER_POLL_INTERVAL_S", 30, 1, 3_600),
        )


@dataclass
class Sent:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    cancelled: int = 0
    released: int = 0  # claimed but handed back unsent: the lease ran short

    def __iadd__(self, other: Sent) -> Sent:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self


def run_sender(service: LedgerService, settings: SenderSettings, stop: threading.Event, *, once: bool,
               send: Callable[[LedgerService, SenderSettings], Sent] | None = None) -> Sent:
    """Sends batch after batch (of reminders, unless ``send`` says otherwise); with
    ``once``, until nothing is due, else until ``stop``."""
    total = Sent()
    while not stop.is_set():
        batch = (send or send_batch)(service, settings)
        total += batch
        if batch.claimed == 0:
            if once:
                break
            stop.wait(settings.poll_interval_s)
    return total


def send_batch(service: LedgerService, settings: SenderSettings) -> Sent:
    """Claims up to one batch of due reminders and sends them over one SMTP connection; a
    reminder whose invoice was paid meanwhile is cancelled instead."""
    return _send(service, settings, service.reminder_outbox, lambda row: message_of(row, settings.smtp_from),
                 lambda row: None if still_owed(service, row) else PAID_BEFORE_SENDING)


def send_receipts(service: LedgerService, settings: SenderSettings) -> Sent:
    """Claims up to one batch of due receipts and e-mails each with its PDF."""
    return _send(service, settings, service.receipt_outbox,
                 lambda row: receipt_message(service, row, settings.smtp_from), lambda row: None)


def _send(service: LedgerService, settings: SenderSettings, outbox: LeasedOutbox[Any],
          message: Callable[[Any], EmailMessage], unwanted: Callable[[Any], str | None]) -> Sent:
    now = service.clock()
    rows = outbox.claim(now, now + timedelta(seconds=settings.lease_s), settings.batch_rows, settings.max_attempts)
    result = Sent(claimed=len(rows))
    started = monotonic()
    with SmtpMailer(settings.server) as mailer:
        for index, row in enumerate(rows):
            if monotonic() - started > settings.lease_s / 2:
                outbox.release([r.id for r in rows[index:]], service.clock())
                result.released += len(rows) - index
                break
            reason = unwanted(row)
            if reason is not None:
                outbox.mark_cancelled(row.id, reason)
                result.cancelled += 1
                continue
            try:
                mailer.send(message(row))
            except (MailNotSent, ValueError) as error:  # ValueError: a header the message can't carry
                log.warning("%s %s to %s failed: %s", outbox.TABLE, row.id, row.recipients, error)
                reason = str(error) if isinstance(error, MailNotSent) else f"{type(error).__name__}: {error}"
                outbox.mark_failed(row.id, reason, service.clock() + timedelta(seconds=settings.retry_delay_s),
                                   last_attempt=row.attempts + 1 >= settings.max_attempts)
                result.failed += 1
                continue
            outbox.mark_sent(row.id, service.clock())
            result.sent += 1
    return result


def still_owed(service: LedgerService, row: ReminderRow) -> bool:
    invoice = service.view.invoice(row.invoice_id)
    # The exact outstanding amount decides, not payment_status (SQLite can mislabel it).
    return invoice is not None and invoice.status == InvoiceStatus.APPROVED and invoice.outstanding > 0


def message_of(row: ReminderRow, sender: str) -> EmailMessage:
    message = EmailMessage(policy=HEADER_POLICY)
    message["Subject"] = row.subject
    message["From"] = sender
    message["To"] = ", ".join(row.recipients)
    message["Message-ID"] = make_msgid(idstring=f"reminder-{row.id}")
    message["X-Ledger-Reminder-Id"] = str(row.id)
    message.set_content(row.body)
    return message


def receipt_message(service: LedgerService, row: ReceiptRow, sender: str) -> EmailMessage:
    """The receipt's e-mail: what it is for, and the same PDF `GET /v1/receipts/{no}.pdf` gives."""
    document = receipt_document(service, row.receipt_no)
    amount = format_amount(document.amount)
    message = EmailMessage(policy=HEADER_POLICY)
    message["Subject"] = f"Receipt {document.number}: {amount} {document.currency} received"
    message["From"] = sender
    message["To"] = ", ".join(row.recipients)
    domain = sender.rpartition("@")[2] or "ledger"
    message["Message-ID"] = f"<receipt.{document.number.replace(':', '.')}@{domain}>"  # the same on a repeat
    message["X-Ledger-Receipt"] = document.number
    message.set_content(
        f"Thank you for your {document.kind} of {amount} {document.currency} to account {document.account_id}, "
        f"received {document.received_at:%Y-%m-%d %H:%M} UTC.\n\nThe receipt is attached.\n")
    pdf = render_receipt_pdf(document, issuer_of(service.settings))
    message.add_attachment(pdf, maintype="application", subtype="pdf",
                           filename=f"receipt-{document.number.replace(':', '-')}.pdf")
    return message
