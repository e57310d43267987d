"""`ledger db status|upgrade`: the database's schema version, and the migrations to it
(persistence/schema.py)."""

from __future__ import annotations

import json

import click

from entrypoints.process import open_service
from persistence import schema
from persistence.appending import caused_by
from service.rebuild import rebuild
from service.settings import Settings


@click.group()
def db() -> None:
    """The database's schema: see its version, apply the migrations this code knows."""


@db.command("status")
def status() -> None:
    """The schema version the database is at, and this code's."""
    settings = Settings.from_env()
    found = schema.find(settings.database)
    click.echo(json.dumps({"database_version": found.version, "code_version": schema.CODE_VERSION,
                           "state": found.state.value, "has_events": found.has_events}))


@db.command("upgrade")
def upgrade() -> None:
    """Apply every pending migration in order (idempotent; processes at once take turns),
    rebuilding the read models when one asks for it."""
    service = open_service(Settings.from_env(), upgrade=True)
    rebuilt = None
    try:
        applied = service.migrations_applied
        if any(m.rebuilds_read_models for m in applied):
            with caused_by(kind="command", command="db upgrade"):
                rebuilt = rebuild(service)
    finally:
        service.close()
    for migration in applied:
        click.echo(f"applied {migration.version}: {migration.description}")
    if rebuilt is not None:
        click.echo(f"read models rebuilt from {rebuilt.events} events")
    click.echo(f"schema at version {schema.CODE_VERSION}" + ("" if applied else " (nothing to do)"))
