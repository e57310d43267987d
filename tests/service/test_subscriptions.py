"""Subscriptions at the service layer: the money each change moves, to the last digit."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from ledger_core.commands import (
    AddAddon,
    CancelSubscription,
    ChangePackage,
    CreatePlan,
    DeleteSubscription,
    ReactivateSubscription,
    RemoveAddon,
    RenewSubscription,
    RepricePlan,
    Subscribe,
)
from ledger_core.errors import CurrencyMismatch, SubscriptionNotActive
from projections.rows import TransactionFilter
from service.test_clocks import advance_test_clock, create_test_clock
from tests.service.helpers import open_account


@pytest.fixture
def catalog(service):
    for plan_id, kind, price in (("basic", "package", "31"), ("pro", "package", "62"), ("ai", "addon", "9.30")):
        service.handle(CreatePlan(plan_id, kind=kind, name=plan_id.title(), period="monthly", currency="SGD",
                                  price=price, allowances={"seats": 3} if kind == "package" else {}))
    return service


def moves(service, account_id="acme"):
    rows = service.view.transactions(TransactionFilter(account_id), 100).rows
    return [(r.type.value, f"{r.amount:f}") for r in reversed(rows)]


def test_a_month_of_changes_costs_each_item_its_active_days(catalog, clock):
    service = catalog
    open_account(service, "acme", billing_mode="postpaid", credit_limit="1000")
    clock.now = datetime(2027, 1, 1, 9, tzinfo=timezone.utc)  # a 31-day period: Jan 1 - Jan 31
    sub = service.handle(Subscribe("acme", plan_id="basic", idempotency_key="s1")).transaction_no
    assert service.handle(Subscribe("acme", plan_id="basic", idempotency_key="s1")).replayed
    clock.now = datetime(2027, 1, 11, 9, tzinfo=timezone.utc)  # 21 days left
    service.handle(AddAddon("acme", sub, plan_id="ai", idempotency_key="a1"))
    clock.now = datetime(2027, 1, 21, 9, tzinfo=timezone.utc)  # 11 days left
    service.handle(ChangePackage("acme", sub, plan_id="pro", idempotency_key="c1"))
    clock.now = datetime(2027, 1, 26, 9, tzinfo=timezone.utc)  # 6 days left
    service.handle(RemoveAddon("acme", sub, plan_id="ai", idempotency_key="r1"))
    assert moves(service) == [
        ("Expense", "-31.000000"),  # basic, the whole period
        ("Expense", "-6.300000"),  # ai: 9.30 x 21 / 31
        ("System", "11.000000"),  # basic: 11 unused days back (31 - 31 x 20 / 31)
        ("Expense", "-22.000000"),  # pro: 62 x 11 / 31
        ("System", "1.800000"),  # ai: 6 unused days back (6.30 - 9.30 x 15 / 31)
    ]
    # basic 20 days + pro 11 days + ai 15 days
    assert service.account_row("acme").figures.expecting_invoice == -(Decimal(20) + Decimal(22) + Decimal("4.5"))

    clock.now = datetime(2027, 2, 1, 0, 30, tzinfo=timezone.utc)
    renewed = service.handle(RenewSubscription("acme", sub))
    assert renewed.amount == Decimal(62)  # pro for February, in full
    assert service.handle(RenewSubscription("acme", sub)).amount == 0  # nothing due twice


def test_cancel_now_credits_reactivate_charges_the_rest_and_delete_hides(catalog, clock):
    service = catalog
    open_account(service, "acme", billing_mode="postpaid", credit_limit="1000")
    clock.now = datetime(2027, 2, 1, 9, tzinfo=timezone.utc)  # a 28-day period
    sub = service.handle(Subscribe("acme", plan_id="basic", idempotency_key="s1")).transaction_no
    clock.now = datetime(2027, 2, 8, 9, tzinfo=timezone.utc)
    assert service.handle(CancelSubscription("acme", sub, at_period_end=False, idempotency_key="x")).amount == \
        Decimal("-23.25")  # 21 of 28 days back
    with pytest.raises(SubscriptionNotActive):
        service.handle(CancelSubscription("acme", sub, at_period_end=False, idempotency_key="x2"))
    clock.now = datetime(2027, 2, 15, 9, tzinfo=timezone.utc)
    assert service.handle(ReactivateSubscription("acme", sub, idempotency_key="re")).amount == Decimal("15.50")
    # 7 + 14 active days: 31 x 21 / 28 = 23.25
    assert service.account_row("acme").figures.expecting_invoice == Decimal("-23.25")
    with pytest.raises(SubscriptionNotActive):
        service.handle(DeleteSubscription("acme", sub))  # active
    service.handle(CancelSubscription("acme", sub, at_period_end=True, idempotency_key="y"))
    clock.now = datetime(2027, 3, 1, 9, tzinfo=timezone.utc)
    assert service.handle(RenewSubscription("acme", sub)).amount == 0  # ended with its period
    service.handle(DeleteSubscription("acme", sub))
    assert service.commands.subscription("acme", sub).deleted


def test_a_renewal_takes_the_new_price_and_a_plan_in_another_currency_is_refused(catalog, clock):
    service = catalog
    open_account(service, "acme", billing_mode="postpaid", credit_limit="1000")
    open_account(service, "inr", currency="INR")
    clock.now = datetime(2027, 1, 1, 9, tzinfo=timezone.utc)
    sub = service.handle(Subscribe("acme", plan_id="basic")).transaction_no
    service.handle(RepricePlan("basic", price="40"))
    clock.now = datetime(2027, 2, 1, 9, tzinfo=timezone.utc)
    assert service.handle(RenewSubscription("acme", sub)).amount == Decimal(40)
    with pytest.raises(CurrencyMismatch):
        service.handle(Subscribe("inr", plan_id="basic"))


def test_renewals_run_from_the_cli_once_and_on_a_test_clock_when_it_is_advanced(catalog, clock, run_cli):
    service = catalog
    open_account(service, "acme", billing_mode="postpaid", credit_limit="1000")
    create_test_clock(service, datetime(2027, 1, 15, 12, tzinfo=timezone.utc), "clock_r")
    open_account(service, "sandbox", billing_mode="postpaid", credit_limit="1000", test_clock_id="clock_r")
    clock.now = datetime(2026, 10, 20, 9, tzinfo=timezone.utc)  # the CLI reads the real clock: before it
    real = service.handle(Subscribe("acme", plan_id="basic")).transaction_no
    sandbox = service.handle(Subscribe("sandbox", plan_id="pro")).transaction_no
    assert service.commands.subscription("sandbox", sandbox).period_start.isoformat() == "2027-01-15"

    first = run_cli("renew-subscriptions", "--as-of", "2026-11-21T00:00:00+0000")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["renewed"] == {real: "31.000000"}  # the sandbox waits for its clock
    again = run_cli("renew-subscriptions", "--as-of", "2026-11-21T00:00:00+0000")
    assert json.loads(again.stdout)["count"] == 0

    done = advance_test_clock(service, "clock_r", datetime(2027, 3, 20, tzinfo=timezone.utc))
    assert done.renewed == {sandbox: Decimal(124)}  # February 15 and March 15
    assert service.commands.subscription("sandbox", sandbox).period_start.isoformat() == "2027-03-15"


def test_a_new_price_applied_now_is_prorated_and_otherwise_waits_for_the_renewal(catalog, clock):
    from service.subscriptions import reprice_plan

    service = catalog
    open_account(service, "acme", billing_mode="postpaid", credit_limit="1000")
    open_account(service, "beta", billing_mode="postpaid", credit_limit="1000")
    clock.now = datetime(2027, 1, 1, 9, tzinfo=timezone.utc)
    first = service.handle(Subscribe("acme", plan_id="basic")).transaction_no
    service.handle(Subscribe("beta", plan_id="pro"))
    clock.now = datetime(2027, 1, 21, 9, tzinfo=timezone.utc)  # 11 of 31 days left
    _, moved = reprice_plan(service, RepricePlan("basic", price="62", applies_now=True))
    assert moved == {first: Decimal(11)}  # 11 unused days at 31 back, 11 days at 62 charged: 22 - 11
    assert service.commands.subscription("acme", first).package.offer.version == 2
    _, again = reprice_plan(service, RepricePlan("pro", price="70"))
    assert again == {}  # not now: at the next renewal
    assert service.account_row("acme").figures.expecting_invoice == -(Decimal(31) + Decimal(11))


def test_usage_takes_the_included_allowance_first_and_an_extra_pack_raises_it_at_once(service, clock):
    from ledger_core.commands import RecordUsage
    from ledger_core.usage import UsageLine

    service.handle(CreatePlan("chat", kind="package", name="Chat", period="monthly", currency="SGD", price="10",
                              allowances={"chatbot_sessions": "100"}))
    service.handle(CreatePlan("pack-50", kind="addon", name="50 sessions", period="monthly", currency="SGD",
                              price="2", allowances={"chatbot_sessions": "50"}))
    open_account(service, "acme", billing_mode="postpaid", credit_limit="1000")
    clock.now = datetime(2027, 1, 1, 9, tzinfo=timezone.utc)
    sub = service.handle(Subscribe("acme", plan_id="chat")).transaction_no

    def sessions(key, quantity, **extra):
        booking = service.handle(RecordUsage("acme", idempotency_key=key, line=UsageLine(
            "chatbot_sessions", quantity=quantity), **({"unit_price": "0.05"} | extra)))
        return booking.amount

    assert sessions("u1", "80") == 0  # 80 of the 100 included
    assert sessions("u2", "40") == Decimal("1.00")  # 20 free, 20 charged
    clock.now = datetime(2027, 1, 10, 9, tzinfo=timezone.utc)
    service.handle(AddAddon("acme", sub, plan_id="pack-50"))  # bought mid-period: 50 more at once
    assert sessions("u3", "30") == 0
    assert sessions("u4", "30") == Decimal("0.50")  # 20 left of the pack, 10 charged
    assert service.handle(RecordUsage("acme", idempotency_key="u5", line=UsageLine("chatbot_sessions"),
                                      amount="3")).amount == Decimal(3)  # a bare amount is not per unit
    clock.now = datetime(2027, 2, 1, 9, tzinfo=timezone.utc)
    service.handle(RenewSubscription("acme", sub))
    assert sessions("u6", "150") == 0  # a new period: 100 + 50 again
    assert sessions("u7", "1") == Decimal("0.05")
    rows = service.view.transactions(TransactionFilter("acme"), 50).rows
    [u2] = [r for r in rows if r.reference == "u2"]
    assert (u2.quantity, u2.amount) == (Decimal(40), Decimal("-1.00"))  # the units used, the part charged
