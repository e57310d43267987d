"""Events stored by the code of 2026-12-04 (tests/compat/fixture, every event type) load,
project and replay with today's code, on SQLite and PostgreSQL, into the same figures,
invoices and bills they produced then. The events are never re-recorded: a change that old
events cannot follow fails here. Only a deliberate change of what the read models show
(named in its commit) may update expected.json."""

from __future__ import annotations

import json
from pathlib import Path

from eventsourcing.domain import Snapshot

from service.audit import verify_log
from tests.compat.scenario import FIXTURE, load_fixture, outcome, stored_event
from tests.compat.snapshots import SNAPSHOTS


def test_events_of_every_kind_stored_by_earlier_code_give_the_same_figures_invoices_and_bills(service):
    loaded = load_fixture(service)
    assert loaded >= 60
    service.projector.catch_up()
    expected = json.loads((FIXTURE / "expected.json").read_text())
    assert outcome(service) == expected
    for account_id in expected["accounts"]:
        service.commands.account(account_id).check_books()  # the aggregates rebuild from them too
    assert verify_log(service).intact
    assert Path(FIXTURE / "events.jsonl").stat().st_size < 200_000  # a small fixture, kept in git


def test_snapshots_taken_by_earlier_code_load_into_the_state_replaying_the_events_gives(service):
    load_fixture(service)
    ledger = service.commands
    rows = [json.loads(line) for line in SNAPSHOTS.read_text().splitlines()]
    assert len(rows) >= 50
    for row in rows:
        from_snapshot = ledger.mapper.to_domain_event(stored_event(row)).mutate(None)
        replayed = ledger.repository.get(from_snapshot.id, version=row["originator_version"])
        assert vars(from_snapshot) == vars(replayed), (row["account_id"], row["originator_version"])
        from_snapshot.check_books()
        # and a snapshot taken now (typed state, class version 2) reads back the same
        taken = ledger.mapper.to_stored_event(Snapshot.take(replayed))
        assert vars(ledger.mapper.to_domain_event(taken).mutate(None)) == vars(replayed)
