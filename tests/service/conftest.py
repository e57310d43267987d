from __future__ import annotations

import pytest
from click.testing import CliRunner

from entrypoints.cli import main


@pytest.fixture
def run_cli(database, monkeypatch):
    """Runs `ledger ARGS...` in-process against the test's database."""
    monkeypatch.setenv("LEDGER_DATABASE_URL", database.url)
    monkeypatch.setenv("LEDGER_DATABASE_SCHEMA", database.schema)
    runner = CliRunner()
    return lambda *args: runner.invoke(main, list(args))
