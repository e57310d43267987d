"""Loads replay events without the library's per-event runtime-protocol check
(persistence/repository.py): the same aggregate, without the check's cost."""

from __future__ import annotations

from typing import Any

import eventsourcing.application

from ledger_core.account import Account, account_uuid
from ledger_core.money import Money
from persistence.bulk_load import load_aggregates
from service.ledger_service import LedgerService


class _Counted(type):
    checks = 0

    def __instancecheck__(cls, instance: Any) -> bool:
        _Counted.checks += 1
        return True


class _CountedProtocol(metaclass=_Counted):
    pass


def test_loads_replay_without_the_protocol_check_and_give_the_same_account(service: LedgerService,
                                                                          monkeypatch: Any) -> None:
    ledger = service.commands
    account = Account.open(account_id="a1", currency="SGD", billing_mode="prepaid", invoice_mode="consolidated")
    for n in range(5):
        account.recharge(Money.of("10", "SGD"), reference=f"r{n}", method="card")
    ledger.save(account)
    monkeypatch.setattr(eventsourcing.application, "CanMutateProtocol", _CountedProtocol)
    _Counted.checks = 0
    fresh = ledger.repository.get(account.id, version=4)  # no cache: from the store
    cached = ledger.account("a1")  # the current version, from the store into the cache
    [loaded] = load_aggregates(ledger, [account_uuid("a1")]).values()
    assert _Counted.checks == 0
    assert fresh.version == 4 and fresh.figures.amount_due == 30
    assert vars(cached) == vars(loaded) == vars(account)
