"""Rebuilding the read models from event 1 into empty tables gives the same figures."""

from __future__ import annotations

import dataclasses
import sqlite3
from decimal import Decimal as D

import psycopg
import pytest

from ledger_core.commands import PostCharge, Recharge, RecordUsage, Reserve, Settle, UpdateAccount
from ledger_core.errors import InvariantViolation
from ledger_core.usage import UsageLine
from projections.catchup import Projector
from projections.row_sql import APPENDED_TYPES, EVENT_COLUMNS, HOLD_COLUMNS, QUERY_INDEXES, TRANSACTION_COLUMNS
from projections.rows import TransactionFilter
from projections.views import TABLES
from service import rebuild as rebuild_module
from service.ledger_service import LedgerService, make_view
from service.rebuild import KEYS, diff, rebuild, verify
from service.settings import Settings
from tests.service.helpers import open_account


def populate(service) -> None:
    for n, (billing, mode) in enumerate([("prepaid", "itemized"), ("postpaid", "consolidated"), ("prepaid", "none")]):
        account = open_account(service, f"acct-{n}", billing_mode=billing, invoice_mode=mode, credit_limit="100")
        service.handle(Recharge(account, amount="50.5", reference="r"))
        for i in range(5):
            service.handle(RecordUsage(account, idempotency_key=f"u{i}", unit_price="0.0000035",
                                       line=UsageLine(product="sms", quantity="7")))
        service.handle(PostCharge(account, idempotency_key="c", kind="subscription", description="Pro", amount="9.99"))
        service.handle(Reserve(account, reservation_id="h1", amount="10"))
        service.handle(Reserve(account, reservation_id="h2", amount="5"))
        service.handle(Settle(account, "h1", amount="3.25", line=UsageLine(product="call")))
        service.handle(UpdateAccount(account, credit_limit="250", payer={"name": f"Payer {n}"}))


def test_rebuild_from_event_one_matches_the_live_read_model(service):
    populate(service)
    live = service.view.dump()
    fresh = make_view(service.commands, prefix="rebuild")
    assert all(rows == [] for rows in fresh.dump().values())
    position = Projector(service.commands, fresh, batch_events=4).catch_up()
    assert position == service.projector.position
    assert fresh.dump() == live
    assert len(live["accounts"]) == 3 and len(live["transactions"]) == 3 * 8 and len(live["holds"]) == 3
    # every account event: opened, recharge, 5 usage, charge, 2 holds, settle, 2 changes; the
    # itemized account also drafts and approves the charge's own invoice
    assert len(live["events"]) == 3 * 13 + 2
    assert [(i["kind"], i["status"], i["number"]) for i in live["invoices"]] == [("charge", "approved", "INV-2026-000001")]


def test_catching_up_twice_applies_nothing_twice(service):
    populate(service)
    before = service.view.dump()
    assert service.projector.catch_up() == service.projector.position
    assert service.view.dump() == before


def corrupt(database, statement: str) -> None:
    if database.is_postgres:
        with psycopg.connect(database.url, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{database.schema}"')
            conn.execute(statement)
    else:
        with sqlite3.connect(database.url.removeprefix("sqlite:///")) as conn:
            conn.execute(statement)


def test_verify_finds_no_difference_on_a_healthy_read_model(service):
    populate(service)
    differences, replayed = verify(service)
    assert differences == []
    assert replayed.events == last_position_count(service)


def test_verify_reports_an_altered_row_and_a_missing_one(service, database):
    populate(service)
    corrupt(database, "UPDATE rm_accounts SET amount_due = '1.000000' WHERE account_id = 'acct-1'")
    corrupt(database, "DELETE FROM rm_transactions WHERE transaction_no = 'acct-2:00000002'")
    differences, _ = verify(service)
    assert [d.table for d in differences] == ["accounts", "transactions"]
    assert differences[0].key == ("acct-1",) and differences[1].rebuilt["transaction_no"] == "acct-2:00000002"
    assert "amount_due live=" in str(differences[0]) and differences[1].live is None
    assert "missing from the live read model" in str(differences[1])


def test_verify_compares_every_table_of_the_read_model(service, database):
    populate(service)
    assert set(service.view.dump()) == set(KEYS)  # a table without key columns would be skipped
    assert set(KEYS) == set(TABLES) - {"tracking"}  # and one a rebuild does not swap in would be left stale
    corrupt(database, "UPDATE rm_invoices SET status = 'void'")
    corrupt(database, "UPDATE rm_invoice_lines SET amount = '0.000001'")
    corrupt(database, "DELETE FROM rm_bills WHERE account_id = 'acct-0'")
    differences, _ = verify(service)
    assert sorted({d.table for d in differences}) == ["bills", "invoice_lines", "invoices"]
    assert all(d.live is None for d in differences if d.table == "bills")
    assert verify(service)[0] == differences and rebuild(service) and verify(service)[0] == []


def indexes(database) -> set[str]:
    if database.is_postgres:
        with psycopg.connect(database.url, autocommit=True) as conn:
            rows = conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s", (database.schema,)).fetchall()
    else:
        with sqlite3.connect(database.url.removeprefix("sqlite:///")) as conn:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    return {name for (name,) in rows}


def test_rebuild_swaps_in_correct_tables_and_writes_go_on(service, database):
    populate(service)
    live_indexes = indexes(database)
    assert {f"rm_{name}" for name in QUERY_INDEXES} <= live_indexes
    corrupt(database, "UPDATE rm_accounts SET amount_due = '1.000000' WHERE account_id = 'acct-1'")
    replayed = rebuild(service)
    assert replayed.position == service.projector.position
    assert verify(service)[0] == []
    service.handle(Recharge("acct-1", amount="1", reference="after"))
    assert service.account_row("acct-1").figures.amount_due == D("51.5")  # 50.5 + 1: the corruption is gone
    rebuild(service)  # twice: the swapped-in tables and indexes carry the live names
    assert verify(service)[0] == []
    assert indexes(database) == live_indexes  # those built at the end of the replay too
    assert service.view.transactions(TransactionFilter("acct-1", text="after"), 5).rows[0].amount == D(1)


def test_the_cli_verifies_and_rebuilds(service, database, run_cli):
    populate(service)
    healthy = run_cli("projections", "verify")
    assert healthy.exit_code == 0 and "0 differences" in healthy.output
    corrupt(database, "UPDATE rm_holds SET amount = '99.000000'")
    broken = run_cli("projections", "verify")
    assert broken.exit_code == 1 and broken.output.count("DIFFERENT holds") == 3
    rebuilt = run_cli("projections", "rebuild")  # on PostgreSQL split between processes, one per core
    assert rebuilt.exit_code == 0 and "events/s" in rebuilt.output
    assert run_cli("projections", "verify").exit_code == 0
    assert run_cli("projections", "verify", "--processes", "1").exit_code == 0
    split = run_cli("projections", "rebuild", "--processes", "2")
    if database.is_postgres:
        assert split.exit_code == 0 and run_cli("projections", "verify", "--processes", "3").exit_code == 0
    else:
        assert split.exit_code == 2 and "needs PostgreSQL" in split.output
    assert run_cli("projections", "rebuild", "--processes", "0").exit_code == 2


def last_position_count(service) -> int:
    return sum(1 for _ in service.commands.recorder.audit_trail())


@pytest.mark.postgres
def test_verify_walks_text_keys_in_byte_order_whatever_the_columns_collation(postgres_schema):
    service = LedgerService(Settings(database=postgres_schema))
    try:
        for account in ("Zed", "alpha", "Beta"):  # ICU order: alpha, Beta, Zed; byte order: Beta, Zed, alpha
            open_account(service, account)
            service.handle(RecordUsage(account, idempotency_key="u", amount="0.5", line=UsageLine(product="sms")))
        corrupt(postgres_schema, 'ALTER TABLE rm_accounts ALTER COLUMN account_id TYPE TEXT COLLATE "und-x-icu"')
        assert verify(service)[0] == []  # each side read in byte order: walked side by side
        corrupt(postgres_schema, "UPDATE rm_accounts SET amount_due = '1.000000' WHERE account_id = 'alpha'")
        assert [(d.table, d.key) for d in verify(service)[0]] == [("accounts", ("alpha",))]
    finally:
        service.close()


def rows_of(tables):
    def rows(table):
        yield from tables.get(table, [])
    return rows


def test_diff_walks_both_sides_in_key_order_and_stops_at_its_limit(monkeypatch):
    live = {"accounts": [{"account_id": "a", "v": 1}, {"account_id": "b", "v": 2}, {"account_id": "d", "v": 4}]}
    rebuilt = {"accounts": [{"account_id": "b", "v": 2}, {"account_id": "c", "v": 3}, {"account_id": "d", "v": 5}]}
    found = diff(rows_of(live), rows_of(rebuilt))
    assert [(d.key, d.live is None, d.rebuilt is None) for d in found] == [
        (("a",), False, True), (("c",), True, False), (("d",), False, False)]
    with pytest.raises(InvariantViolation, match="not in key order"):  # a side read in another order
        diff(rows_of({"accounts": live["accounts"][::-1]}), rows_of(rebuilt))
    monkeypatch.setattr(rebuild_module, "MAX_DIFFERENCES", 2)
    assert len(diff(rows_of(live), rows_of(rebuilt))) == 2


@pytest.mark.postgres
def test_the_binary_copy_types_are_the_appended_tables_column_types(postgres_schema):
    service = LedgerService(Settings(database=postgres_schema))
    service.close()
    columns = {"transactions": TRANSACTION_COLUMNS, "holds": HOLD_COLUMNS, "events": EVENT_COLUMNS}
    with psycopg.connect(postgres_schema.url, autocommit=True) as conn:
        for table, types in APPENDED_TYPES.items():
            found = dict(conn.execute("SELECT column_name, udt_name FROM information_schema.columns "
                                      "WHERE table_schema = %s AND table_name = %s",
                                      (postgres_schema.schema, f"rm_{table}")).fetchall())
            assert tuple(found[c] for c in columns[table]) == types, table
            assert set(found) == set(columns[table])


@pytest.mark.postgres
def test_verify_with_a_pool_of_one_connection_reads_each_side_whole(postgres_schema):
    service = LedgerService(Settings(database=dataclasses.replace(postgres_schema, pool_size=1, max_overflow=0)))
    try:
        populate(service)
        assert verify(service)[0] == []  # two readers at once would wait for each other's connection
        corrupt(postgres_schema, "UPDATE rm_accounts SET amount_due = '1.000000' WHERE account_id = 'acct-1'")
        assert [(d.table, d.key) for d in verify(service)[0]] == [("accounts", ("acct-1",))]
    finally:
        service.close()
