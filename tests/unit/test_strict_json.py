"""service/wire.py load_json: the strict JSON both edges read, at its limits."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from service.wire import MAX_JSON_DEPTH, BadJson, UnsafeJsonText, load_json


def nested(depth: int, leaf: object) -> str:
    """``depth`` containers, lists and objects by turns, around ``leaf``."""
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return json.dumps(value)


@pytest.mark.parametrize("leaf", [1, "text", None, True, [], {}])
def test_a_value_at_the_deepest_level_is_read(leaf):
    assert load_json(nested(MAX_JSON_DEPTH, leaf)) is not None  # an empty container adds no level


@pytest.mark.parametrize("leaf", [[1], ["text"], {"a": 1}, {"a": "text"}, [[]]])
def test_a_member_one_level_deeper_is_refused(leaf):
    with pytest.raises(BadJson, match="nested deeper"):
        load_json(nested(MAX_JSON_DEPTH, leaf))


@pytest.mark.parametrize("where", ['{"a": "%s"}', '{"%s": 1}', '["%s"]', '{"a": {"b": ["ok", "%s"]}}', '"%s"'])
@pytest.mark.parametrize("bad", ["\\u0000", "\\u0007", "\\u001b", "\\ud800", "\\u007f"])
def test_unsafe_text_is_refused_wherever_it_stands(where, bad):
    with pytest.raises(UnsafeJsonText):
        load_json(where % bad)


def test_numbers_are_exact_and_keys_once():
    assert load_json('{"a": 0.1, "b": [1, -2], "c": false}') == {"a": Decimal("0.1"), "b": [1, -2], "c": False}
    for refused in ('{"a": 1, "a": 2}', '[1e5]', '[NaN]', "[" + "9" * 400 + "]"):
        with pytest.raises(BadJson):
            load_json(refused)
