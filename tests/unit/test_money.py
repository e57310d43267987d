from decimal import Decimal

import pytest

from ledger_core.errors import CurrencyMismatch, InvalidAmount, InvalidCurrency
from ledger_core.money import (
    Money,
    format_amount,
    parse_amount,
    parse_currency,
    parse_unit_price,
    price,
)


def test_worked_example_current_balance_with_sub_cent_amount_due():
    expecting_invoice, amount_due = parse_amount("-1610.61"), parse_amount("-0.20544")
    assert format_amount(expecting_invoice + amount_due) == "-1610.81544"


def test_worked_example_current_balance_with_micro_amount_due():
    expecting_invoice, amount_due = parse_amount("65.98"), parse_amount("-0.000009")
    assert format_amount(expecting_invoice + amount_due) == "65.979991"


@pytest.mark.parametrize(
    ("quantity", "unit_price", "cost"),
    [
        ("1", "0.0000005", "0.000000"),  # half to even: 0.0000005 -> 0.000000
        ("3", "0.0000005", "0.000002"),  # 0.0000015 -> 0.000002
        ("5", "0.0000005", "0.000002"),  # 0.0000025 -> 0.000002 (even)
        ("7", "0.0000005", "0.000004"),  # 0.0000035 -> 0.000004
        ("1000000", "0.000009", "9.000000"),
        ("2.5", "0.1234567", "0.308642"),  # 0.30864175 -> 0.308642
    ],
)
def test_price_rounds_half_even_to_six_places_once(quantity, unit_price, cost):
    assert price(Decimal(quantity), parse_unit_price(unit_price)) == Decimal(cost)


def test_sums_after_rounding_are_exact():
    costs = [price(Decimal(1), parse_unit_price("0.000009")) for _ in range(100_000)]
    assert sum(costs) == Decimal("0.9")


@pytest.mark.parametrize("bad", ["1.0000001", "abc", "NaN", "Infinity", "1e15", "-1e15", 0.1, True, None, [], ""])
def test_bad_amounts_are_refused(bad):
    with pytest.raises(InvalidAmount):
        parse_amount(bad)


def test_amounts_keep_six_places_and_no_negative_zero():
    assert parse_amount("1.5") == Decimal("1.500000")
    assert str(parse_amount("-0")) == "0.000000"
    assert parse_amount(Decimal("999999999999999.999999")) == Decimal("999999999999999.999999")


@pytest.mark.parametrize(
    ("amount", "text"),
    [("0", "0.00"), ("100", "100.00"), ("-1610.815440", "-1610.81544"), ("0.000009", "0.000009"), ("1E+3", "1000.00")],
)
def test_format_is_exact_without_exponent(amount, text):
    assert format_amount(Decimal(amount)) == text


def test_currencies_are_iso_4217_and_never_mix():
    assert parse_currency("SGD") == "SGD"
    with pytest.raises(InvalidCurrency):
        parse_currency("sgd")
    with pytest.raises(CurrencyMismatch):
        Money.of("1", "SGD") + Money.of("1", "USD")
    assert Money.of("1.25", "SGD") - Money.of("0.000009", "SGD") == Money(Decimal("1.249991"), "SGD")
