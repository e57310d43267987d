"""Tamper evidence: the chained log, exports, and the offline checkers, on both databases."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg

from ledger_core.account import account_uuid
from ledger_core.commands import Recharge, RecordUsage, Reserve, Settle
from ledger_core.usage import UsageLine
from persistence.appending import caused_by
from service.audit import export_account, verify_file, verify_log
from tests.service.helpers import open_account

TOOL = Path(__file__).resolve().parents[2] / "tools" / "verify_audit_file.py"


def populate(service) -> None:
    with caused_by(kind="test", who="auditor-fixture"):
        open_account(service)
        open_account(service, "other")
        service.handle(Recharge("acme", amount="65.98", reference="PAY-1"))
        service.handle(RecordUsage("acme", idempotency_key="u1", amount="0.000009", line=UsageLine(product="sms")))
        service.handle(Reserve("acme", reservation_id="r1", amount="10"))
        service.handle(Settle("acme", "r1", amount="4", line=UsageLine(product="call")))
        service.handle(Recharge("other", amount="1"))


def tamper(database, sql_postgres: str, sql_sqlite: str, *params) -> None:
    if database.is_postgres:
        with psycopg.connect(database.url, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{database.schema}"')
            conn.execute(sql_postgres, params)
    else:
        with sqlite3.connect(database.url.removeprefix("sqlite:///")) as conn:
            conn.execute(sql_sqlite, params)


def test_an_untouched_log_verifies_and_records_its_causes(service):
    populate(service)
    report = verify_log(service)
    assert report.intact and report.checked >= 9
    causes = {entry.cause["who"] for entry in service.commands.recorder.audit_trail()}
    assert causes == {"auditor-fixture"}


def test_one_changed_byte_of_one_stored_event_is_found_at_that_event(service, database):
    populate(service)
    acme = account_uuid("acme")
    tamper(database,
           "UPDATE ledger_events SET state = overlay(state placing '\\x20'::bytea from 12 for 1) "
           "WHERE originator_id = %s AND originator_version = 3",
           "UPDATE stored_events SET state = CAST(substr(state, 1, 11) || ' ' || substr(state, 13) AS BLOB) "
           "WHERE originator_id = ? AND originator_version = 3",
           acme if database.is_postgres else acme.hex)
    report = verify_log(service)
    assert not report.intact
    assert (report.broken.aggregate_id, report.broken.version) == (str(acme), 3)
    assert report.broken.position is not None


def test_a_lost_audit_record_breaks_the_chain(service, database):
    populate(service)
    acme = account_uuid("acme")
    tamper(database, "DELETE FROM ledger_events_audit WHERE originator_id = %s AND originator_version = 2",
           "DELETE FROM stored_events_audit WHERE originator_id = ? AND originator_version = 2",
           acme if database.is_postgres else acme.hex)
    broken = verify_log(service).broken
    assert broken is not None and (broken.aggregate_id, broken.version) == (str(acme), 2)


def test_an_export_verifies_offline_and_an_edited_line_does_not(service, tmp_path):
    populate(service)
    good = tmp_path / "acme.jsonl"
    with good.open("w", encoding="utf-8") as out:
        count = export_account(service, "acme", out)
    assert count == 5  # opened, recharged, usage recorded, reserved, settled; nothing of "other"
    assert verify_file(good) == (None, 5)
    assert subprocess.run([sys.executable, str(TOOL), str(good)], capture_output=True).returncode == 0
    lines = good.read_text(encoding="utf-8").splitlines()
    assert "65.980000" in lines[2]
    lines[2] = lines[2].replace("65.980000", "65.990000")  # the recharge, made bigger
    bad = tmp_path / "edited.jsonl"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    broken, _ = verify_file(bad)
    assert broken is not None and broken.version == 2
    tool = subprocess.run([sys.executable, str(TOOL), str(bad)], capture_output=True, text=True)
    assert tool.returncode == 1 and "line 3" in tool.stdout


def test_the_cli_reports_intact_then_broken(service, database, run_cli, tmp_path):
    populate(service)
    intact = run_cli("audit", "verify")
    assert intact.exit_code == 0 and "intact" in intact.output
    out = tmp_path / "export.jsonl"
    exported = run_cli("audit", "export", "--account", "acme", "--out", str(out))
    assert exported.exit_code == 0 and run_cli("audit", "verify-file", str(out)).exit_code == 0
    acme = account_uuid("acme")
    tamper(database, "UPDATE ledger_events_audit SET cause = '{}' WHERE originator_id = %s AND originator_version = 4",
           "UPDATE stored_events_audit SET cause = '{}' WHERE originator_id = ? AND originator_version = 4",
           acme if database.is_postgres else acme.hex)
    broken = run_cli("audit", "verify")
    assert broken.exit_code == 1 and f"aggregate {acme} version 4" in broken.output
