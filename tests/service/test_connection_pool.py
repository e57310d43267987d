"""The pool pings a connection only after it sat idle; one in steady use is not pinged. A
connection the server dropped never fails a write: it is replaced (pinged after idling,
or the library retries the statement on a fresh one)."""

from __future__ import annotations

import time

import psycopg
import pytest

from ledger_core.commands import RecordUsage
from ledger_core.usage import UsageLine
from persistence.database import PingAfterIdle
from service.ledger_service import LedgerService
from service.settings import Settings
from tests.service.helpers import open_account

pytestmark = pytest.mark.postgres


def test_a_connection_the_server_dropped_while_idle_is_replaced(postgres_schema, postgres_url):
    svc = LedgerService(Settings(database=postgres_schema))
    open_account(svc)
    pool = svc.commands.factory.datastore.pool
    check = pool._check
    assert isinstance(check, PingAfterIdle)
    check.idle_s = 0.05
    # Every connection the pool holds, and no other session's: another test run may share the server.
    idle = [pool.getconn() for _ in range(pool.get_stats()["pool_available"])]
    pids = {conn.info.backend_pid for conn in idle}
    for conn in idle:
        pool.putconn(conn)
    assert pids
    with psycopg.connect(postgres_url, autocommit=True) as admin:  # the server drops every pooled connection
        for p in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (p,))
    time.sleep(0.1)  # idle longer than the check's bound
    booking = svc.handle(RecordUsage("acme", idempotency_key="after-drop", amount="1", line=UsageLine(product="sms")))
    assert booking.position is not None and booking.after.version == 2
    svc.close()


def test_a_connection_in_steady_use_is_not_pinged():
    pings: list[str] = []

    class Conn:
        def execute(self, sql: str) -> None:
            pings.append(sql)

    check, conn = PingAfterIdle(idle_s=60), Conn()
    for _ in range(5):
        check(conn)
    assert pings == [""]  # only its first hand-out
    check.idle_s = 0
    time.sleep(0.001)
    check(conn)
    assert len(pings) == 2
