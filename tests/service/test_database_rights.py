"""deploy/postgres/least_privilege.sql: the service's role appends events and never changes
or removes one; a trigger refuses it even to the owner."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import pytest

from ledger_core.commands import Recharge, RecordUsage
from ledger_core.usage import UsageLine
from persistence.database import DatabaseConfig
from service.ledger_service import LedgerService
from service.settings import Settings
from tests.service.helpers import open_account

pytestmark = pytest.mark.postgres
GRANTS = Path(__file__).resolve().parents[2] / "deploy" / "postgres" / "least_privilege.sql"


@pytest.fixture
def app_role(postgres_schema: DatabaseConfig):
    role = "ledger_app_" + uuid.uuid4().hex[:8]
    with psycopg.connect(postgres_schema.url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        yield role
    finally:
        with psycopg.connect(postgres_schema.url, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


def test_the_service_role_appends_events_but_can_never_change_or_remove_one(postgres_schema, app_role):
    LedgerService(Settings(database=postgres_schema)).close()  # the owner creates the tables
    subprocess.run(["psql", postgres_schema.url, "-q", "-v", f"schema={postgres_schema.schema}",
                    "-v", f"app_role={app_role}", "-f", str(GRANTS)], check=True, capture_output=True)
    as_app = DatabaseConfig(urlparse(postgres_schema.url)._replace(
        netloc=f"{app_role}@{urlparse(postgres_schema.url).hostname}:{urlparse(postgres_schema.url).port}").geturl(),
        schema=postgres_schema.schema)
    service = LedgerService(Settings(database=as_app, create_tables=False))
    try:
        account = open_account(service)
        service.handle(Recharge(account, amount="10", idempotency_key="r1"))
        service.handle(RecordUsage(account, idempotency_key="u1", amount="1", line=UsageLine(product="sms")))
        assert service.account_row(account).figures.current_balance == 9
    finally:
        service.close()
    events = f'"{postgres_schema.schema}".ledger_events'
    with psycopg.connect(as_app.url, autocommit=True) as conn:
        for statement in (f"DELETE FROM {events}", f"TRUNCATE {events}",
                          f'DELETE FROM "{postgres_schema.schema}".ledger_events_audit',
                          f'UPDATE "{postgres_schema.schema}".ledger_events_audit SET link = link'):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                conn.execute(statement)
        # UPDATE is granted for the append's table lock only: the trigger refuses the update itself
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute(f"UPDATE {events} SET state = state")
    with psycopg.connect(postgres_schema.url, autocommit=True) as owner:
        for statement in (f"UPDATE {events} SET state = state", f"DELETE FROM {events}", f"TRUNCATE {events}"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                owner.execute(statement)
        assert owner.execute(f"SELECT COUNT(*) FROM {events}").fetchone()[0] >= 3
