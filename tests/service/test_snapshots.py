"""Snapshots are taken from the aggregate as it stands in memory once a save reaches its
interval (commands/ledger.py ``Ledger._snapshot_in_memory``), not loaded back from the store,
and a snapshot that cannot be stored never fails the write it follows."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from ledger_core.account import Account, account_uuid
from ledger_core.commands import RecordUsage
from ledger_core.money import Money
from ledger_core.usage import UsageLine
from persistence.database import DatabaseConfig
from service.ledger_service import LedgerService
from service.settings import Settings
from tests.compat.scenario import Clock, play

ACCOUNTS = ("pre", "post", "item", "none")


def replayed(service: LedgerService, account_id: str, version: int) -> Account:
    """The account at ``version`` from its events alone, no snapshot."""
    repository = service.commands.repository
    store, repository.snapshot_store = repository.snapshot_store, None
    try:
        return repository.get(account_uuid(account_id), version=version)
    finally:
        repository.snapshot_store = store


def test_every_snapshot_holds_the_state_a_replay_of_its_events_gives(database: DatabaseConfig) -> None:
    """Every save of an account snapshots it here (interval 1), through every event type of
    the compatibility scenario: a state kept in memory that its events do not give would
    be stored in a snapshot and come back on the next load."""
    clock = Clock()
    service = LedgerService(Settings(database=database), clock=clock)
    try:
        service.commands.snapshotting_intervals = {Account: 1}
        play(service, clock)
        for account_id in ACCOUNTS:
            snapshots = list(service.commands.snapshots.get(account_uuid(account_id)))  # type: ignore[union-attr]
            assert len(snapshots) >= 2, account_id
            assert snapshots[-1].originator_version == service.commands.account(account_id).version
            for snapshot in snapshots:
                from_snapshot = snapshot.mutate(None)
                assert vars(from_snapshot) == vars(replayed(service, account_id, snapshot.originator_version)), \
                    (account_id, snapshot.originator_version)
    finally:
        service.close()


def test_a_save_that_reaches_the_interval_reads_nothing_back(service: LedgerService, monkeypatch: Any) -> None:
    ledger = service.commands
    ledger.snapshotting_intervals = {Account: 10}
    account = Account.open(account_id="a1", currency="SGD", billing_mode="prepaid", invoice_mode="consolidated")
    account.recharge(Money.of("100", "SGD"), reference="r", method="card")
    ledger.save(account)  # versions 1-2: no multiple of 10 reached
    assert list(ledger.snapshots.get(account.id)) == []  # type: ignore[union-attr]
    reads: list[tuple[Any, ...]] = []
    for recorder in (ledger.recorder, ledger.snapshots.recorder):  # type: ignore[union-attr]
        real = recorder.select_events
        monkeypatch.setattr(recorder, "select_events", lambda *a, _real=real, **k: reads.append(a) or _real(*a, **k))
    now = ledger.clock()
    for n in range(12):  # versions 3-14: one save past 10
        account.record_usage(Money.of("0.5", "SGD"), UsageLine("sms"), unit_price=None, occurred_at=now,
                             idempotency_key=f"k{n}")
    ledger.save(account)
    assert reads == []
    [snapshot] = ledger.snapshots.get(account.id)  # type: ignore[union-attr]
    assert snapshot.originator_version == 14  # the last version saved, not the multiple
    assert vars(snapshot.mutate(None)) == vars(replayed(service, "a1", 14))
    assert ledger.account("a1").figures == account.figures


def test_a_snapshot_that_cannot_be_stored_does_not_fail_the_write(service: LedgerService, monkeypatch: Any,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """The snapshot comes after the commit: the write must answer with its booking."""
    ledger = service.commands
    ledger.snapshotting_intervals = {Account: 1}
    service.run(lambda l: l.save(Account.open(account_id="a1", currency="SGD", billing_mode="postpaid",
                                              invoice_mode="consolidated", credit_limit="100")))

    def broken(*_: Any, **__: Any) -> None:
        raise OSError("the snapshot store went away")

    monkeypatch.setattr(ledger.snapshots, "put", broken)
    with caplog.at_level(logging.WARNING, logger="commands.ledger"):
        booking = service.handle(RecordUsage("a1", idempotency_key="u1", amount="2.5", line=UsageLine("sms"),
                                             occurred_at=ledger.clock() - timedelta(minutes=1)))
    assert booking.after.figures.expecting_invoice == Decimal("-2.5")
    assert service.account_row("a1").figures.expecting_invoice == Decimal("-2.5")
    assert replayed(service, "a1", 2).figures.expecting_invoice == Decimal("-2.5")
    assert [s.originator_version for s in ledger.snapshots.get(account_uuid("a1"))] == [1]  # type: ignore[union-attr]
    assert "no snapshot" in caplog.text
