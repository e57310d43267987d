"""Processes catching the same read model up take turns on PostgreSQL (LedgerViewQueries.
catching_up): a catch-up waits while another process's is under way, instead of computing
a batch the other's would make stale, and then applies what is left."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from ledger_core.commands import RecordUsage
from ledger_core.usage import UsageLine
from service.ledger_service import LedgerService
from service.settings import Settings
from tests.service.helpers import open_account

pytestmark = pytest.mark.postgres
WAIT_S = 0.5


def usage(key: str) -> RecordUsage:
    return RecordUsage("acme", idempotency_key=key, amount="0.01", line=UsageLine(product="sms"))


@contextmanager
def turn_held_by(service: LedgerService) -> Iterator[None]:
    """Another process's catch-up under way (a thread holding ``service``'s turn) until the block ends."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with service.view.catching_up(service.commands.name):
            holding.set()
            release.wait(timeout=30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(timeout=10)
        yield
    finally:
        release.set()
        holder.join(timeout=10)


def test_a_catch_up_waits_for_another_process_s_turn_then_applies_what_is_left(postgres_schema):
    here, there = LedgerService(Settings(database=postgres_schema)), LedgerService(Settings(database=postgres_schema))
    try:
        open_account(here, billing_mode="postpaid", credit_limit="100")
        for n in range(3):
            there.commands.handle(usage(f"u{n}"))  # written, not yet applied to the read model
        before, last = there.projector.position, there.commands.recorder.max_notification_id()
        assert before < last
        with turn_held_by(here):
            waiting = threading.Thread(target=there.projector.catch_up)
            waiting.start()
            waiting.join(timeout=WAIT_S)
            assert waiting.is_alive() and there.projector.position == before  # its turn has not come
        waiting.join(timeout=30)
        assert not waiting.is_alive()
        assert there.projector.position == last
        assert str(here.account_row("acme").figures.expecting_invoice) == "-0.030000"
    finally:
        here.close()
        there.close()


def test_a_pool_of_one_connection_catches_up_without_taking_turns(postgres_schema):
    """The turn is held on a connection of its own: with one in the pool, the batch would
    wait for it forever, so the optimistic check alone keeps the batches apart."""
    service = LedgerService(Settings(database=dataclasses.replace(postgres_schema, pool_size=1, max_overflow=0)))
    try:
        open_account(service, billing_mode="postpaid", credit_limit="100")
        service.handle(usage("u0"))
        assert service.projector.position == service.commands.recorder.max_notification_id()
        assert str(service.account_row("acme").figures.expecting_invoice) == "-0.010000"
    finally:
        service.close()


def test_a_process_stuck_in_its_turn_does_not_stop_the_others_past_the_wait(postgres_schema, monkeypatch):
    here, there = LedgerService(Settings(database=postgres_schema)), LedgerService(Settings(database=postgres_schema))
    monkeypatch.setattr(type(there.view), "turn_wait_ms", 200)
    try:
        open_account(here, billing_mode="postpaid", credit_limit="100")
        there.commands.handle(usage("u0"))
        with turn_held_by(here):  # and never given up while the other waits
            alongside = threading.Thread(target=there.projector.catch_up)  # waits 0.2 s for the turn, then goes on
            alongside.start()
            alongside.join(timeout=10)
            assert not alongside.is_alive(), "still waiting for a turn another process never gives up"
            assert there.projector.position == there.commands.recorder.max_notification_id()
            assert str(there.account_row("acme").figures.expecting_invoice) == "-0.010000"
        with there.view.catching_up(there.commands.name) as position:  # free again, nothing left held
            assert position == there.projector.position  # read once the turn was taken
    finally:
        here.close()
        there.close()
