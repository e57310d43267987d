"""The low_balance_threshold setting and its LowBalanceReached events, on both databases."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from ledger_core.commands import Recharge, RecordUsage, Reserve, UpdateAccount
from ledger_core.errors import InvalidInput, InvoiceModeChangeBlocked
from ledger_core.usage import UsageLine
from projections.rows import EventFilter
from service.rebuild import verify
from tests.service.helpers import last_position, open_account


def event_types(service, account: str) -> list[str]:
    return [row.type for row in service.view.events(EventFilter(account), 500)]


def test_the_threshold_is_set_at_opening_changed_by_update_and_turned_off_with_none(service):
    open_account(service, "acme", low_balance_threshold="10.5")
    assert service.account_row("acme").low_balance_threshold == D("10.5")
    service.handle(UpdateAccount("acme", low_balance_threshold="0"))
    assert service.account_row("acme").low_balance_threshold == D("0")
    service.handle(UpdateAccount("acme", credit_limit="5"))  # not given: unchanged
    assert service.account_row("acme").low_balance_threshold == D("0")
    service.handle(UpdateAccount("acme", low_balance_threshold=None))
    assert service.account_row("acme").low_balance_threshold is None
    assert event_types(service, "acme") == ["AccountOpened", "LowBalanceThresholdChanged", "LowBalanceThresholdChanged",
                                            "CreditLimitChanged", "LowBalanceThresholdChanged"]


def test_a_negative_threshold_is_refused_and_writes_nothing(service):
    before = last_position(service)
    with pytest.raises(InvalidInput):
        open_account(service, "neg", low_balance_threshold="-1")
    assert last_position(service) == before
    open_account(service, "acme")
    before = last_position(service)
    with pytest.raises(InvalidInput):
        service.handle(UpdateAccount("acme", credit_limit="50", low_balance_threshold="-0.01"))
    assert last_position(service) == before
    assert service.account_row("acme").figures.credit_limit == 0


def test_update_is_all_or_none_with_the_threshold_in_it(service):
    open_account(service, "acme")
    service.handle(Recharge("acme", amount="20"))  # amount due 20: mode none is refused
    before = last_position(service)
    with pytest.raises(InvoiceModeChangeBlocked):
        service.handle(UpdateAccount("acme", low_balance_threshold="5", invoice_mode="none"))
    assert last_position(service) == before
    assert service.account_row("acme").low_balance_threshold is None


def test_crossings_are_recorded_once_each_indexed_and_replay_to_the_same_read_model(service):
    open_account(service, "acme", low_balance_threshold="10")
    service.handle(Recharge("acme", amount="30"))
    for n, amount in enumerate(["5", "10", "6", "1"]):
        service.handle(RecordUsage("acme", idempotency_key=f"u{n}", amount=amount, line=UsageLine(product="sms")))
    service.handle(Recharge("acme", amount="20"))  # 28: re-armed
    service.handle(Reserve("acme", reservation_id="h", amount="19"))  # 9: a hold crosses too
    types = event_types(service, "acme")
    assert types.count("LowBalanceReached") == 2
    assert [types[i - 1] for i, t in enumerate(types) if t == "LowBalanceReached"] == ["UsageRecorded", "CreditsReserved"]
    row = service.account_row("acme")
    assert row.figures.usable_credits == D("9") and row.version == len(types)
    differences, _ = verify(service)
    assert differences == []
