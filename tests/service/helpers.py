"""Small helpers for service-level tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ledger_core.commands import OpenAccount
from persistence.database import DatabaseConfig
from service.ledger_service import LedgerService
from service.settings import Settings


def open_account(service: LedgerService, account_id: str = "acme", **overrides: Any) -> str:
    settings = {"account_id": account_id, "currency": "SGD", "billing_mode": "prepaid",
                "invoice_mode": "consolidated", **overrides}
    service.handle(OpenAccount(**settings))
    return account_id


def last_position(service: LedgerService) -> int:
    """The newest committed event's position: unchanged means nothing was written.
    (Not a count: a PostgreSQL sequence skips the ids of rolled-back inserts.)"""
    return service.commands.recorder.max_notification_id() or 0


def figures(service: LedgerService, account_id: str = "acme") -> dict[str, str]:
    f = service.account_row(account_id).figures
    return {
        "expecting_invoice": f"{f.expecting_invoice:f}", "amount_due": f"{f.amount_due:f}",
        "current_balance": f"{f.current_balance:f}", "reserved": f"{f.reserved:f}",
        "usable_credits": f"{f.usable_credits:f}",
    }


@contextmanager
def two_services(database: DatabaseConfig, clock: Any) -> Iterator[tuple[LedgerService, LedgerService]]:
    """Two services on one database, as two processes would be: each its own view and caches."""
    here = LedgerService(Settings(database=database), clock=clock)
    there = LedgerService(Settings(database=database), clock=clock)
    try:
        yield here, there
    finally:
        here.close()
        there.close()
