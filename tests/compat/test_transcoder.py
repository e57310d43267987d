"""The fast transcoder (persistence/transcodings.py) writes and reads the library's JSON
format byte for byte: on every event and snapshot kind of the compatibility fixture, on
every character, and on what orjson refuses (the library's own code then answers). The
audit chain's canonical form, also written by orjson, is the documented json.dumps text."""

from __future__ import annotations

import base64
import json
from datetime import date, datetime, time, timezone
from decimal import Decimal

import pytest
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError

from commands.ledger import Ledger
from ledger_core.audit import canonical_bytes
from persistence.transcodings import FastJSONTranscoder
from tests.compat.scenario import FIXTURE, load_fixture
from tests.compat.snapshots import SNAPSHOTS


def transcoders() -> tuple[FastJSONTranscoder, JSONTranscoder]:
    ledger = Ledger.__new__(Ledger)  # only its transcodings: no database
    fast, library = FastJSONTranscoder(), JSONTranscoder()
    ledger.register_transcodings(fast)
    ledger.register_transcodings(library)
    return fast, library


def fixture_states() -> list[tuple[str, bytes]]:
    rows = [json.loads(line) for path in (FIXTURE / "events.jsonl", SNAPSHOTS)
            for line in path.read_text().splitlines()]
    return [(row["topic"], base64.b64decode(row["state"])) for row in rows]


def test_every_stored_kind_reads_and_writes_as_the_library_does():
    fast, library = transcoders()
    states = fixture_states()
    assert len({topic for topic, _ in states}) >= 25  # every kind the fixture holds
    for topic, state in states:
        decoded = library.decode(state)
        assert fast.decode(state) == decoded, topic
        assert fast.encode(decoded) == library.encode(decoded), topic


def test_events_and_snapshots_written_now_are_the_library_bytes(service):
    load_fixture(service)
    ledger = service.commands
    assert isinstance(ledger.mapper.transcoder, FastJSONTranscoder)
    _, library = transcoders()
    seen = 0
    for notification in ledger.recorder.select_notifications(start=1, limit=1_000):
        event = ledger.mapper.to_domain_event(notification)
        again = ledger.mapper.to_stored_event(event)
        assert again.state == library.encode(library.decode(notification.state)), notification.topic
        seen += 1
    account = next(a for a in (ledger.repository.get(n.originator_id) for n in
                               ledger.recorder.select_notifications(start=1, limit=50)) if hasattr(a, "figures"))
    taken = ledger.mapper.to_stored_event(Snapshot.take(account))
    assert taken.state == library.encode(library.decode(taken.state))
    assert seen >= 60


def test_every_character_and_the_values_orjson_refuses():
    fast, library = transcoders()
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    value = {"text": every, "é": [1, -2, None, True, False, 2**63 - 1], "amount": Decimal("-0.000001"),
             "at": datetime(2026, 12, 4, 1, 2, 3, 4, tzinfo=timezone.utc), "day": date(2026, 12, 4), "nested": {"a": [{}]}}
    assert fast.encode(value) == library.encode(value)
    assert fast.decode(library.encode(value)) == value
    for odd in ({"big": 2**70}, {1: "a key that is not text"}):
        assert fast.encode(odd) == library.encode(odd)  # the library's encoder wrote it
        assert fast.decode(library.encode(odd)) == library.decode(library.encode(odd))
    with pytest.raises(UnicodeEncodeError):
        fast.encode({"surrogate": "\ud800"})  # refused as before: a coded 400 upstream
    assert fast.decode(b'{"escaped": "\\ud800"}') == library.decode(b'{"escaped": "\\ud800"}')
    with pytest.raises(TranscodingNotRegisteredError):
        fast.encode({"set": {1}})
    with pytest.raises(TranscodingNotRegisteredError):
        fast.decode(b'{"x": {"_type_": "unheard_of", "_data_": 1}}')


def test_audit_links_are_computed_from_the_same_bytes_as_the_documented_json():
    """ledger_core/audit.py writes the canonical form with orjson when the cause is plain;
    the definition is json.dumps(sort_keys, no spaces, UTF-8), and an auditor's own tool
    recomputes links from it: the two must agree to the byte, or old chains would break."""
    state = "".join(chr(c) for c in range(0, 0x3000, 7)).encode("utf-8")
    causes = [{}, {"kind": "http", "key_id": "k0123456789abcdef", "role": "finance", "path": "/v1/accounts/é/usage",
                   "request_id": "r-1", "offset": 2**63 - 1, "flag": True, "none": None},
              {"nested": {"b": [1, "\u2028\x00\x1f\"\\"], "a": {}}, "zeta": "Ωmega", "Zeta": "upper first"},
              {"float": 1.5, "big": 2**80}]  # not plain: written by json.dumps itself
    for cause in causes:
        got = canonical_bytes("3f2504e0-4f89-11d3-9a0c-0305e82c3301", 7, "ledger_core.account:Account.Recharged",
                              state, cause, "2026-12-04T17:16:44.550733+00:00")
        document = {"aggregate_id": "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "version": 7,
                    "topic": "ledger_core.account:Account.Recharged",
                    "state": base64.b64encode(state).decode("ascii"), "cause": cause,
                    "recorded_at": "2026-12-04T17:16:44.550733+00:00"}
        assert got == json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def test_idempotency_fingerprints_are_the_documented_json_to_the_byte():
    """Every claim stores a fingerprint of its request and every retry is compared with it:
    the orjson path in ledger_core/client_key.py must write json.dumps' exact bytes, or a
    retry after an upgrade would be refused as a different request under the same key."""
    from enum import Enum

    from ledger_core.client_key import _canonical

    class Colour(Enum):
        RED = "red"

    def documented(request: dict) -> bytes:
        return json.dumps(request, sort_keys=True, default=str, separators=(",", ":")).encode()

    at = datetime(2026, 12, 4, 1, 2, 3, 4, tzinfo=timezone.utc)
    requests = [{}, {"occurred_at": None, "amount": Decimal("0.004200"), "unit_price": Decimal("1E-7"),
                     "currency": "SGD", "product": "sms", "quantity": Decimal("3"), "app_key": None},
                {"at": at, "naive": datetime(2026, 1, 1), "day": date(2026, 12, 4), "clock": time(9, 30, 0, 5), "n": -(2**63), "yes": True,
                 "list": [1, [None, "x"], {"b": 1, "a": 2}], "Z": "upper first", "nan": Decimal("NaN")},
                {"big": 2**64}, {"float": 0.1}, {"enum": Colour.RED}, {"surrogate": "\ud800"}, {3: "int key"},
                {"é": "non-ASCII key"}]
    requests += [{"text": chr(c)} for c in range(0x3000) if not 0xD800 <= c <= 0xDFFF]
    requests += [{"text": chr(c)} for c in (0x2028, 0x2029, 0xFEFF, 0xFFFF, 0x1F600, 0x10FFFF)]
    for request in requests:
        assert _canonical(request) == documented(request), request
