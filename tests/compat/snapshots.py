"""Snapshots taken by the code of 2026-12-04: every account of the compatibility fixture at
every version it went through, so every shape its state took is among them.

    .venv/bin/python -m tests.compat.snapshots   # writes tests/compat/fixture/snapshots.jsonl

Run once, with the code whose snapshots it records (the Account's state in plain dicts,
class version 1), never again for the same fixture: tests/compat/test_stored_events.py
loads them with today's code, which must read them into the state it keeps now.
"""

from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path

from eventsourcing.domain import Snapshot

from ledger_core.account import account_uuid
from persistence.database import DatabaseConfig
from service.ledger_service import LedgerService
from service.settings import Settings
from tests.compat.scenario import FIXTURE, load_fixture

SNAPSHOTS = FIXTURE / "snapshots.jsonl"


def account_ids() -> list[str]:
    return sorted(json.loads((FIXTURE / "expected.json").read_text())["accounts"])


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="ledger-snapshots-"))
    service = LedgerService(Settings(database=DatabaseConfig(f"sqlite:///{folder}/ledger.db")))
    try:
        load_fixture(service)
        rows = []
        ledger = service.commands
        for account_id in account_ids():
            last = ledger.account(account_id).version
            for version in range(1, last + 1):
                snapshot = Snapshot.take(ledger.repository.get(account_uuid(account_id), version=version))
                stored = ledger.mapper.to_stored_event(snapshot)
                rows.append({"account_id": account_id, "originator_id": str(stored.originator_id),
                             "originator_version": stored.originator_version, "topic": stored.topic,
                             "state": base64.b64encode(stored.state).decode("ascii")})
    finally:
        service.close()
    SNAPSHOTS.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    print(f"{len(rows)} snapshots written to {SNAPSHOTS}")


if __name__ == "__main__":
    main()
