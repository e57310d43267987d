"""A rebuild split between processes (PostgreSQL) writes exactly the rows the live read
model holds: accounts spread over the shares, orders and subscriptions whose later events
name no account, invoices, bills, holds; then the set has one position and writes go on.
A failing share fails the rebuild; the database computes share keys as the replay does;
reads and builds over whole tables are not cut by the requests' statement timeout."""

from __future__ import annotations

import dataclasses
import threading
from datetime import datetime, timezone
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import MapperDeserialisationError

from ledger_core.account import account_uuid
from ledger_core.commands import (
    AddAddon,
    CancelOrder,
    CancelSubscription,
    ChangePackage,
    CreatePlan,
    PayOrder,
    PlaceOrder,
    RecordUsage,
    Subscribe,
)
from ledger_core.usage import UsageLine
from persistence.log_shares import SHARE_KEY, count_up_to, events_per_aggregate
from projections.row_sql import QUERY_INDEXES
from projections.shares import ACCOUNT_TOPICS, share_key
from service.ledger_service import LedgerService
from service.rebuild import rebuild, verify
from service.settings import Settings
from tests.service.helpers import last_position, open_account
from tests.service.test_rebuild import populate

pytestmark = pytest.mark.postgres


@pytest.fixture
def service(postgres_schema, clock):
    svc = LedgerService(Settings(database=postgres_schema), clock=clock)
    try:
        yield svc
    finally:
        svc.close()


def history(service, clock) -> None:
    populate(service)  # three accounts: money, usage, holds, a charge invoice drafted and approved
    clock.now = datetime(2027, 1, 1, 9, tzinfo=timezone.utc)
    for plan_id, kind, price in (("basic", "package", "31"), ("pro", "package", "62"), ("ai", "addon", "9.30")):
        service.handle(CreatePlan(plan_id, kind=kind, name=plan_id.title(), period="monthly", currency="SGD",
                                  price=price, allowances={"seats": 3} if kind == "package" else {}))
    for n in range(4):
        account = open_account(service, f"sub-{n}", billing_mode="postpaid", credit_limit="1000")
        sub = service.handle(Subscribe(account, plan_id="basic", idempotency_key=f"s{n}")).transaction_no
        service.handle(AddAddon(account, sub, plan_id="ai", idempotency_key=f"a{n}"))  # events naming no account
        service.handle(ChangePackage(account, sub, plan_id="pro", idempotency_key=f"c{n}"))
        order = service.handle(PlaceOrder(account, kind="agent", product="Proxy", quantity="2", unit_price="7.5",
                                          order_id=f"ord_p{n}")).transaction_no
        service.handle(PayOrder(account, order, method="balance"))
        cancelled = service.handle(PlaceOrder(account, kind="agent", product="Proxy", quantity="1", unit_price="1",
                                              order_id=f"ord_c{n}")).transaction_no
        service.handle(CancelOrder(account, cancelled))
        if n % 2:
            service.handle(CancelSubscription(account, sub))
    for i in range(40):  # one account far larger than the others: it gets a share of its own
        service.handle(RecordUsage("sub-0", idempotency_key=f"big-{i}", amount="0.01", line=UsageLine(product="sms")))


def test_a_share_that_fails_fails_the_rebuild_and_the_live_read_model_stays(service, clock, postgres_schema):
    history(service, clock)
    live = service.view.dump()
    with psycopg.connect(postgres_schema.url, autocommit=True) as conn:  # an event no process can decode
        conn.execute(f'SET search_path TO "{postgres_schema.schema}"')
        conn.execute("INSERT INTO ledger_events (originator_id, originator_version, topic, state) "
                     "VALUES (%s, 99999, 'ledger_core.account:Account.UsageRecorded', %s)",
                     (account_uuid("sub-2"), b"{not json"))
    with pytest.raises(MapperDeserialisationError, match="originator_version 99999"):  # raised in a share's process
        rebuild(service, processes=2)
    assert service.view.dump() == live  # nothing was swapped in


def test_the_database_computes_each_share_key_as_the_replay_does(postgres_schema):
    ids = [uuid4() for _ in range(500)] + [account_uuid(f"acct-{n}") for n in range(500)]
    ids += [UUID(int=0), UUID(int=2**128 - 1), UUID("80000000-0000-0000-0000-000000000000")]
    with psycopg.connect(postgres_schema.url, autocommit=True) as conn:
        rows = conn.execute(f"SELECT originator_id, {SHARE_KEY} AS key FROM unnest(%s::uuid[]) AS originator_id",
                            (ids,)).fetchall()
    assert {i: k for i, k in rows} == {i: share_key(i) for i in ids}


def tracked_positions(database) -> list[tuple[str, int]]:
    with psycopg.connect(database.url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{database.schema}"')
        return conn.execute("SELECT application_name, notification_id FROM rm_tracking ORDER BY 1").fetchall()


@pytest.mark.parametrize("processes", [2, 3])
def test_a_split_rebuild_writes_the_rows_of_the_live_read_model(service, clock, postgres_schema, processes):
    history(service, clock)
    live = service.view.dump()
    assert live["orders"] and live["subscriptions"] and live["invoices"] and live["bills"] and live["holds"]

    replayed = rebuild(service, processes=processes)

    assert replayed.position == last_position(service) and replayed.events == replayed.position
    assert service.view.dump() == live
    positions = dict(tracked_positions(postgres_schema))
    assert positions[service.commands.name] == replayed.position and not [n for n in positions if "#" in n]
    service.handle(RecordUsage("acct-0", idempotency_key="after", amount="0.02", line=UsageLine(product="sms")))
    assert service.account_row("acct-0").position == last_position(service)  # writes go on, caught up


def test_a_split_verify_finds_what_one_process_finds(service, clock, postgres_schema):
    history(service, clock)
    assert verify(service, processes=2)[0] == []
    with psycopg.connect(postgres_schema.url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{postgres_schema.schema}"')
        conn.execute("UPDATE rm_orders SET status = 'paid' WHERE order_id = 'ord_c1'")
    differences, replayed = verify(service, processes=2)
    assert [(d.table, d.key) for d in differences] == [("orders", ("ord_c1",))]
    assert [str(d) for d in differences] == [str(d) for d in verify(service)[0]]  # what one process finds
    assert replayed.position == last_position(service)


def test_reads_and_builds_over_a_whole_table_are_not_cut_by_the_statement_timeout(postgres_schema, clock):
    # Each waits here for a lock held past the timeout: as a long scan of a large ledger would.
    database = dataclasses.replace(postgres_schema, statement_timeout_ms=100)
    service = LedgerService(Settings(database=database), clock=clock)
    try:
        populate(service)
        service.view.drop_query_indexes()
        for table, work in (("ledger_events", lambda: count_up_to(service.commands, 10)),
                            ("ledger_events", lambda: events_per_aggregate(service.commands, ACCOUNT_TOPICS)),
                            ("rm_transactions", service.view.build_query_indexes),
                            ("rm_bills", lambda: verify(service))):
            with psycopg.connect(postgres_schema.url) as holder:
                holder.execute(f'LOCK TABLE "{postgres_schema.schema}"."{table}" IN ACCESS EXCLUSIVE MODE')
                released = threading.Timer(0.4, holder.commit)
                released.start()
                work()
                released.join()
        assert count_up_to(service.commands, 10) == 10
        with psycopg.connect(postgres_schema.url) as conn:
            built = conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s", (postgres_schema.schema,))
            assert {f"rm_{name}" for name in QUERY_INDEXES} <= {name for (name,) in built.fetchall()}
    finally:
        service.close()
