"""The LowBalanceReached rule of the Account aggregate: once per crossing, re-armed above."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal as D

import pytest
from eventsourcing.application import project_aggregate

from ledger_core.account import Account
from ledger_core.errors import InvalidInput
from ledger_core.money import Money
from ledger_core.usage import UsageLine

NOW = datetime(2026, 11, 26, 9, tzinfo=timezone.utc)


def opened(threshold: object = "10", **settings: object) -> Account:
    account = Account.open(account_id="a", currency="SGD", billing_mode="prepaid", invoice_mode="consolidated",
                           low_balance_threshold=threshold, **settings)
    account.recharge(Money(D(30), "SGD"), reference="r", method="card")
    return account


def use(account: Account, amount: str, key: str) -> None:
    account.record_usage(Money(D(amount), "SGD"), UsageLine("sms"), unit_price=None, occurred_at=NOW,
                         idempotency_key=key)


def signals(account: Account) -> list[tuple[D, D, int]]:
    return [(e.usable_credits, e.threshold, e.crossed_version) for e in account.pending_events
            if isinstance(e, Account.LowBalanceReached)]


def test_one_signal_per_crossing_and_a_second_only_after_going_back_above():
    account = opened()
    use(account, "5", "u1")  # 25
    use(account, "15", "u2")  # 10: at the threshold is not below it
    assert signals(account) == []
    use(account, "0.000001", "u3")  # 9.999999: crossed
    use(account, "4", "u4")  # 5.999999: still below, no second signal
    assert signals(account) == [(D("9.999999"), D("10"), 6)]
    account.recharge(Money(D("4.000001"), "SGD"), reference="r2", method="card")  # 10: re-armed
    use(account, "1", "u5")  # 9
    assert [s[0] for s in signals(account)] == [D("9.999999"), D("9")]
    assert account.pending_events[-1].originator_version == account.version


def test_holds_and_a_lowered_credit_limit_cross_too_and_a_release_re_arms():
    account = opened("20")
    account.reserve(Money(D(15), "SGD"), reservation_id="h", expires_at=None)  # 30 -> 15
    account.release("h", reason="cancelled")  # 30
    account.change_credit_limit("0")  # unchanged: 0 -> 0, no event
    account.reserve(Money(D(11), "SGD"), reservation_id="h2", expires_at=None)  # 19
    types = [type(e).__name__ for e in account.pending_events]
    assert types.count("LowBalanceReached") == 2
    assert types[types.index("CreditsReserved") + 1] == "LowBalanceReached"


def test_no_threshold_no_signal_and_setting_one_below_does_not_signal_by_itself():
    account = opened(None)
    use(account, "29", "u1")  # 1
    assert signals(account) == []
    account.change_low_balance_threshold("5")  # already below: only a crossing signals
    use(account, "0.5", "u2")
    assert signals(account) == []
    account.change_low_balance_threshold(None)
    assert account.low_balance_threshold is None


@pytest.mark.parametrize("bad", ["-0.01", "1.0000001", "x"])
def test_a_threshold_must_be_an_amount_of_zero_or_more(bad):
    with pytest.raises(InvalidInput) as error:
        opened(bad)
    assert error.value.details["field"] == "low_balance_threshold"


def test_a_replay_rebuilds_the_same_account_without_signalling_again():
    account = opened()
    use(account, "25", "u1")
    events = account.collect_events()
    replayed = project_aggregate(None, events)
    assert replayed.version == account.version and replayed.low_balance_threshold == D("10")
    assert replayed.pending_events == []  # replays never record new events
    assert replayed.figures == account.figures
