"""Schema versions (persistence/schema.py) and `ledger db upgrade`, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ledger_core.commands import Recharge
from persistence import schema
from persistence.schema import CODE_VERSION, Migration, SchemaMismatch
from service.ledger_service import LedgerService
from service.rebuild import verify
from service.settings import Settings
from tests.serverproc import ROOT, server_env
from tests.service.helpers import open_account


def ledger(database, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "entrypoints.cli", *args], env=server_env(database.url, database.schema),
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def schema_table(database) -> str:
    return f'"{database.schema}".ledger_schema' if database.is_postgres else "ledger_schema"


def execute(database, statement: str) -> None:
    with schema._Database(database).connection() as conn:
        conn.execute(statement)


def test_an_empty_database_is_brought_to_the_codes_version(database):
    LedgerService(Settings(database=database)).close()
    found = schema.find(database)
    assert (found.version, found.state) == (CODE_VERSION, schema.SchemaState.CURRENT)
    LedgerService(Settings(database=database)).close()  # and starts again as it is


def test_a_database_from_before_versions_is_refused_until_upgraded(database):
    service = LedgerService(Settings(database=database))
    open_account(service)
    service.close()
    execute(database, f"DROP TABLE {schema_table(database)}")  # as every database written before versions
    with pytest.raises(SchemaMismatch, match="ledger db upgrade"):
        LedgerService(Settings(database=database))
    with pytest.raises(SchemaMismatch, match="ledger db upgrade"):  # a worker that may not create tables
        LedgerService(Settings(database=database, create_tables=False))
    refused = ledger(database, "keys", "list")
    assert refused.returncode == 1 and "ledger db upgrade" in refused.stderr and "Traceback" not in refused.stderr
    upgraded = ledger(database, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "applied 1:" in upgraded.stdout
    service = LedgerService(Settings(database=database))
    assert service.account_row("acme").version == 1  # nothing of the data was touched
    service.close()


def test_a_database_newer_than_the_code_is_refused(database):
    LedgerService(Settings(database=database)).close()
    placeholder = "%s" if database.is_postgres else "?"
    with schema._Database(database).connection() as conn:
        conn.execute(f"INSERT INTO {schema_table(database)} VALUES ({placeholder}, 'from the future', 'later')",
                     (CODE_VERSION + 1,))
    with pytest.raises(SchemaMismatch, match="newer than this code"):
        LedgerService(Settings(database=database))
    status = json.loads(ledger(database, "db", "status").stdout)
    assert (status["database_version"], status["state"]) == (CODE_VERSION + 1, "newer")


def test_two_upgrades_at_once_on_a_fresh_database_one_applies_the_other_finds_nothing(database):
    env = server_env(database.url, database.schema)
    runs = [subprocess.Popen([sys.executable, "-m", "entrypoints.cli", "db", "upgrade"], env=env, cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    said = sorted("nothing to do" in out for out, _ in outputs)
    assert said == [False, True], outputs


def test_a_migration_runs_its_statements_and_rebuilds_the_read_models_once(database, monkeypatch):
    service = LedgerService(Settings(database=database))
    open_account(service)
    service.handle(Recharge("acme", amount="5"))
    service.close()
    index = "CREATE INDEX IF NOT EXISTS rm_tx_by_reference ON {table} (reference)"
    table = f'"{database.schema}".rm_transactions' if database.is_postgres else "rm_transactions"
    second = Migration(CODE_VERSION + 1, "index balance details by reference", postgres=(index.format(table=table),),
                       sqlite=(index.format(table=table),), rebuilds_read_models=True)
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, second))
    monkeypatch.setattr(schema, "CODE_VERSION", second.version)
    with pytest.raises(SchemaMismatch, match="ledger db upgrade"):
        LedgerService(Settings(database=database))
    from click.testing import CliRunner

    from entrypoints.cli import main

    monkeypatch.setenv("LEDGER_DATABASE_URL", database.url)
    monkeypatch.setenv("LEDGER_DATABASE_SCHEMA", database.schema)
    first = CliRunner().invoke(main, ["db", "upgrade"])
    again = CliRunner().invoke(main, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert f"applied {second.version}: index balance details by reference" in first.stdout
    assert "read models rebuilt from" in first.stdout and "rebuilt" not in again.stdout
    assert "nothing to do" in again.stdout
    assert schema.find(database).version == second.version
    service = LedgerService(Settings(database=database))
    try:
        assert verify(service)[0] == []
        assert service.account_row("acme").figures.amount_due == 5
    finally:
        service.close()



def test_many_processes_started_at_once_on_an_empty_database_all_come_up(database):
    """Servers, consumers and chores build the same service on start: started together on an
    empty database, one creates the tables and the others wait for it, then all run."""
    env = server_env(database.url, database.schema)
    commands = [["catch-up"], ["catch-up"], ["expire-reservations"], ["close-cycles"], ["renew-subscriptions"],
                ["db", "status"]]
    runs = [subprocess.Popen([sys.executable, "-m", "entrypoints.cli", *args], env=env, cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for args in commands]
    outputs = [run.communicate(timeout=180) for run in runs]
    assert [run.returncode for run in runs] == [0] * len(commands), outputs
    assert schema.find(database).version == CODE_VERSION
