"""`ledger keys create|list|revoke`: API keys from the operator's shell.

The CLI speaks for whoever may run it on the server (it holds the database URL), so it
needs no key itself; what it does is recorded with cause kind=command."""

from __future__ import annotations

import json

import click

from entrypoints.process import ledger_service
from ledger_core.access import Role
from ledger_core.commands import IssueKey, RevokeKey
from persistence.appending import caused_by


@click.group()
def keys() -> None:
    """API keys: create (the secret is printed once), list, revoke."""


@keys.command("create")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--account", "accounts", multiple=True, help="Limit the key to this account (repeatable).")
@click.option("--name", default="", help="Who or what holds the key.")
def create(role: str, accounts: tuple[str, ...], name: str) -> None:
    """Create a key. The secret is the last line printed, alone, and shown only this once."""
    with ledger_service() as service, caused_by(kind="command", command="keys create"):
        issued = service.handle(IssueKey(role, name=name, accounts=accounts or None))
    scope = ", ".join(issued.key.accounts) if issued.key.accounts else "every account"
    click.echo(f"key {issued.key.key_id}: role {role}, {scope}. Its secret (shown once):")
    click.echo(issued.secret)


@keys.command("list")
def list_keys() -> None:
    """Every key as JSON Lines (never a secret)."""
    with ledger_service() as service:
        for key in service.commands.api_keys():
            click.echo(json.dumps({
                "key_id": key.key_id, "name": key.name, "role": key.role,
                "accounts": None if key.accounts is None else list(key.accounts),
                "issued_at": key.issued_at.isoformat(),
                "revoked_at": None if key.revoked_at is None else key.revoked_at.isoformat()}))


@keys.command("revoke")
@click.argument("key_id")
def revoke(key_id: str) -> None:
    """Revoke a key: it stops working at once."""
    with ledger_service() as service, caused_by(kind="command", command="keys revoke"):
        service.handle(RevokeKey(key_id))
    click.echo(f"revoked {key_id}")
