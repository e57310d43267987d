"""The `ledger` command: serve the HTTP API and run the ledger's scheduled chores."""

from __future__ import annotations

import importlib
import json
import os
import secrets
import sys
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from consumer.kafka_loop import ConsumerSettings, KafkaIngest
from entrypoints.db_cli import db
from entrypoints.export_cli import export
from entrypoints.keys_cli import keys
from entrypoints.logs import configure_logging
from entrypoints.process import (
    METRICS_PORT_OPTION,
    ledger_service,
    open_service,
    serve_metrics,
    stop_on_signals,
    tune_garbage_collector,
)
from entrypoints.publish import publish_events
from entrypoints.reminders_cli import remind, send_receipts_command, send_reminders
from entrypoints.tryout import produce_sample, try_out
from ledger_core.commands import IssueBootstrapKey
from ledger_core.errors import LedgerError
from persistence.appending import caused_by
from projections.ledger import LedgerProjection
from projections.shares import MAX_SHARES
from service.audit import export_account, verify_file, verify_log
from service.invoicing import close_due_cycles
from service.ledger_service import LedgerService
from service.rebuild import MAX_DIFFERENCES, default_processes, rebuild, verify
from service.reminder_sender import SenderSettings
from service.scheduler import Schedule, chores, run_scheduler
from service.settings import InvalidSetting, Settings
from service.subscriptions import renew_due_subscriptions


class LedgerGroup(click.Group):
    """A refusal by the ledger (a LedgerError) or a setting that cannot work ends any command
    with its code and message on one line and exit status 1, as the API answers it with a
    4xx: no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LedgerError as error:
            raise click.ClickException(f"{error.code}: {error.message}") from None
        except InvalidSetting as error:
            raise click.ClickException(str(error)) from None


@click.group(cls=LedgerGroup)
@click.option("--log-level", default="INFO", show_default=True)
@click.option("--log-format", type=click.Choice(["json", "text"]), default=None,
              help="Log lines as JSON (the default) or text [LEDGER_LOG_FORMAT].")
def main(log_level: str, log_format: str | None) -> None:
    """Event-sourced accounting ledger."""
    configure_logging(log_level, log_format)
    os.environ["LEDGER_LOG_LEVEL"] = log_level  # for the server's workers too
    if log_format:
        os.environ["LEDGER_LOG_FORMAT"] = log_format  # for the server's workers too


@main.command()
@click.option("--host", default=None, help="Interface to bind [LEDGER_HTTP_HOST, default 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port [LEDGER_HTTP_PORT, default 8080].")
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Processes [LEDGER_HTTP_WORKERS].")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the HTTP API (gunicorn, gevent workers)."""
    settings = Settings.from_env()
    try:  # the server's own settings, read here so that a bad one is refused before anything starts
        importlib.import_module("entrypoints.gunicorn_conf")
        importlib.import_module("entrypoints.http_worker")
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    host = host or settings.http_host
    port = port or settings.http_port
    # Create the tables once, before workers start, so they never race to create them.
    service = open_service(settings)
    try:
        with caused_by(kind="command", command="serve"):
            bootstrap = service.handle(IssueBootstrapKey())
    finally:
        service.close()
    if bootstrap is not None:
        click.echo("ledger: no API key existed, so this admin key was made; it is shown only now "
                   f"(key {bootstrap.key.key_id}; make others with `ledger keys create`):", err=True)
        click.echo(bootstrap.secret)
    click.echo(f"ledger: serving on http://{host}:{port} (database {settings.database.url.split('@')[-1]})",
               err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # gunicorn in place of this process (same pid, so signals reach it): its master imports
    # none of the ledger, its gevent workers load entrypoints/wsgi.py after patching.
    env = {**os.environ, "LEDGER_GUNICORN_BIND": f"{host}:{port}",
           "LEDGER_HTTP_WORKERS": str(workers or settings.http_workers)}
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="ledger-metrics-"))
    # One secret for every worker's console sessions (a session must work on any worker);
    # without LEDGER_CONSOLE_SECRET, console logins end when the server restarts.
    env.setdefault("LEDGER_CONSOLE_SECRET", secrets.token_hex(32))
    os.execvpe(sys.executable, [sys.executable, "-m", "gunicorn", "--config", "python:entrypoints.gunicorn_conf",
                                "entrypoints.wsgi:app"], env)


@main.command("expire-reservations")
def expire_reservations() -> None:
    """Release every hold whose expires_at has passed (run it from a scheduler)."""
    with ledger_service() as service:
        with caused_by(kind="command", command="expire-reservations"):
            expired = service.expire_due_reservations()
    click.echo(json.dumps({"expired": expired, "count": sum(len(v) for v in expired.values())}))


@main.command("close-cycles")
@click.option("--as-of", "as_of", default=None, type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"]),
              help="Close cycles that ended by then (ISO time with offset, or a UTC date; default now).")
def close_cycles(as_of: datetime | None) -> None:
    """Close every billing cycle that is due, issuing the invoices each account's mode asks for."""
    with ledger_service() as service:
        moment = service.clock() if as_of is None else as_of if as_of.tzinfo else as_of.replace(tzinfo=timezone.utc)
        with caused_by(kind="command", command="close-cycles"):
            made = close_due_cycles(service, moment)
    click.echo(json.dumps({"as_of": moment.isoformat(), "invoices": made,
                           "count": sum(len(v) for v in made.values())}))


@main.command("renew-subscriptions")
@click.option("--as-of", "as_of", default=None, type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"]),
              help="Renew the periods that ended by then (ISO time with offset, or a UTC date; default now).")
def renew_subscriptions(as_of: datetime | None) -> None:
    """Charge the next period of every subscription whose period ended (or end those set to cancel)."""
    with ledger_service() as service:
        moment = service.clock() if as_of is None else as_of if as_of.tzinfo else as_of.replace(tzinfo=timezone.utc)
        with caused_by(kind="command", command="renew-subscriptions"):
            charged = renew_due_subscriptions(service, moment)
    click.echo(json.dumps({"as_of": moment.isoformat(), "renewed": {k: f"{v:f}" for k, v in charged.items()},
                           "count": len(charged)}))


@main.command()
@click.option("--once", is_flag=True, help="Run every chore once, then stop.")
def scheduler(once: bool) -> None:
    """Run the chores on their schedules until SIGTERM: release expired holds, close the cycles
    that ended, renew subscriptions, send queued reminders and receipts (LEDGER_SCHEDULE_*; mail only with
    LEDGER_SMTP_HOST)."""
    stop = threading.Event() if once else stop_on_signals()
    sender = SenderSettings.from_env() if os.environ.get("LEDGER_SMTP_HOST") else None
    with ledger_service() as service:
        planned = chores(service, Schedule.from_env(os.environ), sender)
        click.echo(f"ledger: scheduler running {', '.join(f'{c.name} every {c.interval_s} s' for c in planned)}",
                   err=True)
        run_scheduler(planned, stop, max_rounds=1 if once else None)
    click.echo(json.dumps({c.name: {"runs": c.runs, "failures": c.failures} for c in planned}))


@main.command("catch-up")
def catch_up() -> None:
    """Apply every event not yet in the read models (after a bulk import, say)."""
    with ledger_service() as service:
        before = service.projector.position
        after = service.projector.catch_up()
    click.echo(json.dumps({"from_position": before, "to_position": after}))


@main.command()
@METRICS_PORT_OPTION
def consume(metrics_port: int | None) -> None:
    """Apply usage messages from Kafka until SIGTERM or Ctrl-C (settings: LEDGER_KAFKA_*)."""
    serve_metrics(metrics_port)
    stop = stop_on_signals()
    settings = ConsumerSettings.from_env()
    with ledger_service() as service, caused_by(kind="kafka"):
        ingest = KafkaIngest(service, settings)
        tune_garbage_collector()
        click.echo(f"ledger: consuming {settings.topics.usage} from {settings.bootstrap_servers} "
                   f"as group {settings.group_id}", err=True)
        try:
            ingest.run(stop)
        finally:
            ingest.close()


@main.group()
def projections() -> None:
    """The read models: rebuild them from event 1, or check them against a rebuild."""


NAME_OPTION = click.option("--name", type=click.Choice([LedgerProjection.name]), default=LedgerProjection.name,
                           show_default=True, help="Which projection (one so far).")


def _progress_bar(service: LedgerService, description: str) -> Any:
    return tqdm(total=service.commands.recorder.max_notification_id() or 0, desc=description, unit="events")


PROCESSES_OPTION = click.option(
    "--processes", type=click.IntRange(1, MAX_SHARES), default=None,
    help="Processes the replay is split between, each with its share of the accounts (PostgreSQL; "
         "default: one per core, at most 4; SQLite: 1).")


def _processes(service: LedgerService, processes: int | None) -> int:
    if processes is None:
        return default_processes(service)
    if processes > 1 and not service.settings.database.is_postgres:
        raise click.BadParameter("a split replay needs PostgreSQL (SQLite writes one at a time)",
                                 param_hint="--processes")
    return processes


@projections.command("rebuild")
@NAME_OPTION
@PROCESSES_OPTION
def projections_rebuild(name: str, processes: int | None) -> None:
    """Rebuild from event 1 into fresh tables and swap them in; reads go on meanwhile."""
    with ledger_service() as service:
        with _progress_bar(service, f"rebuilding {name}") as bar:
            replayed = rebuild(service, progress=lambda _position, events: bar.update(events),
                               processes=_processes(service, processes))
    click.echo(f"rebuilt {name}: {replayed.events} events in {replayed.seconds:.1f} s "
               f"= {replayed.events_per_s:,.0f} events/s; swapped in at position {replayed.position}")


@projections.command("verify")
@NAME_OPTION
@PROCESSES_OPTION
def projections_verify(name: str, processes: int | None) -> None:
    """Rebuild into scratch tables and diff them with the live ones (exit 1 on any difference)."""
    with ledger_service() as service:
        with _progress_bar(service, f"replaying {name}") as bar:
            differences, replayed = verify(service, progress=lambda _position, events: bar.update(events),
                                           processes=_processes(service, processes))
    for difference in differences:
        click.echo(f"DIFFERENT {difference}")
    more = f" (verify stops at {MAX_DIFFERENCES:,})" if len(differences) >= MAX_DIFFERENCES else ""
    click.echo(f"replayed {replayed.events} events in {replayed.seconds:.1f} s = {replayed.events_per_s:,.0f} events/s; "
               f"{len(differences)} differences{more}")
    if differences:
        sys.exit(1)


@main.group()
def audit() -> None:
    """Tamper evidence: check the chained event log, export an account, check an export."""


@audit.command("verify")
def audit_verify() -> None:
    """Walk every chain; report the first broken link (exit 1) or how many events are intact."""
    with ledger_service() as service:
        report = verify_log(service)
    if report.broken:
        b = report.broken
        click.echo(f"BROKEN at aggregate {b.aggregate_id} version {b.version} (position {b.position}): {b.reason}")
    if report.orphan_audit_records:
        click.echo(f"BROKEN: {report.orphan_audit_records} audit records have lost their event")
    if not report.intact:
        sys.exit(1)
    click.echo(f"intact: {report.checked} events, every link verified")


@audit.command("export")
@click.option("--account", "account_id", required=True)
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
def audit_export(account_id: str, out_path: Path) -> None:
    """Write an account's events and chain links as a self-contained JSON Lines file."""
    with ledger_service() as service:
        with out_path.open("w", encoding="utf-8") as out:
            count = export_account(service, account_id, out)
    click.echo(f"exported {count} events of {account_id} to {out_path}")


@audit.command("verify-file")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def audit_verify_file(path: Path) -> None:
    """Check an export offline (no database): exit 1 at the first broken link."""
    broken, checked = verify_file(path)
    if broken:
        click.echo(f"BROKEN at version {broken.version} (position {broken.position}): {broken.reason}")
        sys.exit(1)
    click.echo(f"intact: {checked} events")


main.add_command(try_out)
main.add_command(produce_sample)
main.add_command(publish_events)
main.add_command(export)
main.add_command(remind)
main.add_command(send_reminders)
main.add_command(send_receipts_command)
main.add_command(keys)
main.add_command(db)


if __name__ == "__main__":
    main()
