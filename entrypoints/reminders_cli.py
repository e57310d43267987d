"""`ledger remind` (queue payment reminders) and `ledger send-reminders` (deliver them by SMTP)."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import asdict
from datetime import date, datetime, timezone

import click

from entrypoints.process import ledger_service, stop_on_signals
from ledger_core.cycles import Bound
from ledger_core.errors import InvalidInput, LedgerError
from ledger_core.invoicing import DueStatus
from service.reminder_sender import SenderSettings, run_sender, send_receipts
from service.reminders import REMINDABLE, ReminderFilter, queue_reminders

DAY = click.DateTime(formats=["%Y-%m-%d"])


class DayOrTime(click.ParamType):
    """As the API's filters take them: a month, a day (the account's local days) or a time with an offset."""

    name = "month|day|time"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> Bound:
        if isinstance(value, Bound):
            return value
        text = str(value).strip()
        try:
            days = Bound.of_days(text)
            if days is not None:
                return days
            moment = datetime.fromisoformat(text)
        except (InvalidInput, ValueError):
            self.fail(f"{text!r} is neither 2026-11, 2026-11-01 nor a time like 2026-11-01T00:00:00+00:00", param, ctx)
        if moment.tzinfo is None:
            self.fail(f"{text!r} needs a time zone offset", param, ctx)
        return Bound(moment=moment.astimezone(timezone.utc))


@click.command("remind")
@click.option("--account", "account_id", default=None, help="Only this account's invoices.")
@click.option("--number", default=None, help="Only this invoice number.")
@click.option("--payment-status", type=click.Choice(REMINDABLE), default=None, help="Default: both.")
@click.option("--due-status", type=click.Choice([s.value for s in DueStatus]), default=None)
@click.option("--period-from", type=DayOrTime(), default=None,
              help="Invoices whose period ends after this time, or covers this day or month or later "
                   "(the account's local days).")
@click.option("--period-to", type=DayOrTime(), default=None,
              help="... and starts before this time, or by the last day of this day or month.")
@click.option("--today", type=DAY, default=None, help="The day that decides --due-status [default: today, UTC].")
@click.option("--idempotency-key", default=None,
              help="Default: derived from the filters and the day, so a rerun that day queues nothing twice.")
def remind(account_id: str | None, number: str | None, payment_status: str | None, due_status: str | None,
           period_from: Bound | None, period_to: Bound | None, today: datetime | None,
           idempotency_key: str | None) -> None:
    """Queue a payment reminder for every approved, unpaid or partially paid invoice the filters pick."""
    filters = ReminderFilter(account_id=account_id, number=number, payment_status=payment_status,
                             due_status=due_status, period_from=period_from, period_to=period_to)
    day = today.date() if today else None
    with ledger_service() as service:
        key = idempotency_key or derived_key(filters, day or service.clock().date())
        try:
            queued = queue_reminders(service, filters, key, day)
        except LedgerError as error:
            raise click.ClickException(f"{error.code}: {error.message}") from None
    click.echo(json.dumps({"idempotency_key": key, **asdict(queued)}))


def derived_key(filters: ReminderFilter, day: date) -> str:
    digest = hashlib.sha256(json.dumps(filters.as_requested(), sort_keys=True, default=str).encode()).hexdigest()
    return f"remind:{day.isoformat()}:{digest[:16]}"


@click.command("send-reminders")
@click.option("--once", is_flag=True, help="Send what is due now, then exit (else poll until SIGTERM).")
def send_reminders(once: bool) -> None:
    """Deliver queued reminders by SMTP (settings: LEDGER_SMTP_*, LEDGER_REMINDER_*)."""
    settings = SenderSettings.from_env()
    stop = threading.Event() if once else stop_on_signals()
    if not once:
        click.echo(f"ledger: sending reminders via {settings.smtp_host}:{settings.smtp_port}", err=True)
    with ledger_service() as service:
        sent = run_sender(service, settings, stop, once=once)
    click.echo(json.dumps(asdict(sent)))


@click.command("send-receipts")
@click.option("--once", is_flag=True, help="Send what is due now, then exit (else poll until SIGTERM).")
def send_receipts_command(once: bool) -> None:
    """E-mail queued receipts (recharges, payments) with their PDF, by SMTP (LEDGER_SMTP_*, LEDGER_REMINDER_*)."""
    settings = SenderSettings.from_env()
    stop = threading.Event() if once else stop_on_signals()
    with ledger_service() as service:
        sent = run_sender(service, settings, stop, once=once, send=send_receipts)
    click.echo(json.dumps(asdict(sent)))
