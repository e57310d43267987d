"""Per-day proration, property-tested: whatever happens to a subscription in a period (package
changes, add-ons bought and dropped, cancelled and reactivated on random days, in months of 28
to 31 days and in years), each item costs price x active days / days in the period, rounded
once to 6 places, and the charges and credits posted add up to exactly that."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger_core.catalog import Offer
from ledger_core.errors import InvalidInput, SubscriptionNotActive
from ledger_core.subscription import Subscription

prices = st.decimals(min_value="0.000001", max_value="100000", places=6)
OPS = ("change", "add", "remove", "cancel", "reactivate")


def offer(plan_id: str, kind: str, price: Decimal, period: str) -> Offer:
    return Offer(plan_id, kind, plan_id, period, "SGD", 1, price)


def exact(price: Decimal, days: int, period_days: int) -> Decimal:
    """The model: a fraction, rounded once by hand (no shared code with the ledger)."""
    value = Fraction(price) * days / period_days
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("0.000001"), ROUND_HALF_EVEN)


@settings(max_examples=300, deadline=None)
@given(start=st.dates(min_value=date(2027, 1, 1), max_value=date(2029, 12, 31)),
       period=st.sampled_from(["monthly", "yearly"]), prices=st.lists(prices, min_size=3, max_size=3),
       steps=st.lists(st.tuples(st.integers(0, 400), st.sampled_from(OPS)), max_size=12))
def test_each_item_costs_its_active_days_to_the_last_digit(start, period, prices, steps):
    basic, pro, addon = (offer("basic", "package", prices[0], period), offer("pro", "package", prices[1], period),
                         offer("ai", "addon", prices[2], period))
    sub, movements = Subscription.start("sub_p", "acme", basic, start)
    days = sub.period_days
    posted = [m for m in movements]
    # the model: each item's running stretches as (price, first day, last day exclusive or None)
    instances: list[list] = [[basic.price, [[start, None]]]]
    current = {"package": 0}
    active = True
    for offset, op in sorted(steps, key=lambda step: step[0] % days):
        today = start + timedelta(days=offset % days)
        try:
            if op == "change":
                target = pro if sub.package.offer.plan_id == "basic" else basic
                posted += sub.change_package(target, today, at_renewal=False)
                instances[current["package"]][1][-1][1] = today
                instances.append([target.price, [[today, None]]])
                current["package"] = len(instances) - 1
            elif op == "add":
                posted += sub.add_addon(addon, 1, today)
                instances.append([addon.price, [[today, None]]])
                current["addon"] = len(instances) - 1
            elif op == "remove":
                posted += sub.remove_addon("ai", today)
                instances[current.pop("addon")][1][-1][1] = today
            elif op == "cancel":
                posted += sub.cancel(today, at_period_end=False)
                for index in current.values():
                    instances[index][1][-1][1] = today
                active = False
            else:
                posted += sub.reactivate(today)
                for index in current.values():
                    instances[index][1].append([today, None])
                active = True
        except (InvalidInput, SubscriptionNotActive):
            continue  # refused (not active, no add-on, ...): the model did not change either
    end = sub.period_end
    expected = Decimal(0)
    for price, stretches in instances:
        active_days = sum(((last or end) - first).days for first, last in stretches)
        expected += exact(price, active_days, days)
    charged = sum((-m.amount if m.credit else m.amount for m in posted), Decimal(0))
    assert charged == expected, (charged, expected, active)
    assert all(m.amount > 0 for m in posted)
