"""The consumer's fast message check agrees with the schema: it never accepts what the
schema refuses, and what it accepts reads exactly as the schema reads it."""

from __future__ import annotations

import json
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from consumer.messages import _SCHEMA, _fast, parse

FIELDS = sorted(_SCHEMA.fields) + ["bogus"]
SAMPLES = ["", "1", "0.0042", "0.000001", "1.0000001", "-2", "1e3", "abc", "usage", "reserve", "settle", "release",
           "acct-1", "bad id!", "SGD", "sgd", "x" * 33, "x" * 129, "2026-11-26T10:00:00Z", "2026-11-26T10:00:00",
           "cancelled", "expired", "NaN", "Infinity"]
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(SAMPLES), st.text(max_size=4),
                   st.decimals(allow_nan=False, allow_infinity=False, places=7, min_value=-10, max_value=10),
                   st.lists(st.integers(), max_size=1))
BASE = st.fixed_dictionaries({"event_id": st.sampled_from(["e1", "", "x" * 129]),
                              "type": st.sampled_from(["usage", "reserve", "settle", "release", "other"]),
                              "account_id": st.sampled_from(["acct-1", "bad id!"]),
                              "schema_version": st.sampled_from([1, 1, 2, True, "1"])})
DOCUMENTS = st.builds(lambda base, extra, drop: {k: v for k, v in {**base, **extra}.items() if k != drop},
                      BASE, st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=5),
                      st.sampled_from([None, "event_id", "type", "schema_version"]))


def exact(message: dict) -> dict:
    return {k: (type(v).__name__, str(v)) for k, v in message.items()}


@settings(max_examples=3_000, deadline=None)
@given(DOCUMENTS)
def test_the_fast_check_accepts_only_what_the_schema_accepts_and_reads_it_the_same(document):
    fast = _fast(document)
    try:
        expected = _SCHEMA.load(document)
    except ValidationError:
        expected = None
    if fast is not None:
        assert expected is not None and exact(fast) == exact(expected)


def test_the_usual_messages_take_the_fast_path():
    usual = [
        {"event_id": "e1", "type": "usage", "account_id": "a", "product": "sms", "amount": "0.75", "schema_version": 1},
        {"event_id": "e2", "type": "usage", "account_id": "a", "product": "sms", "quantity": "3", "unit": "msg",
         "unit_price": "0.0042", "application_id": "app", "app_key": "k", "currency": "SGD",
         "occurred_at": "2026-11-26T10:00:00+08:00", "schema_version": 1},
        {"event_id": "e3", "type": "reserve", "account_id": "a", "reservation_id": "r", "amount": "5",
         "expires_at": "2026-11-26T10:00:00Z", "schema_version": 1},
        {"event_id": "e4", "type": "settle", "account_id": "a", "reservation_id": "r", "amount": "4",
         "product": "call", "schema_version": 1},
        {"event_id": "e5", "type": "release", "account_id": "a", "reservation_id": "r", "reason": "failed",
         "schema_version": 1},
    ]
    for document in usual:
        fast = _fast(json.loads(json.dumps(document), parse_float=Decimal))
        assert fast is not None, document
        assert exact(fast) == exact(parse(json.dumps(document).encode()))
        assert exact(fast) == exact(_SCHEMA.load(json.loads(json.dumps(document), parse_float=Decimal)))
