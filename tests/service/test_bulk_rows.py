"""Many account rows and bills in one batch go through a COPY-staged upsert on PostgreSQL
(projections/bulk.py), and many appended rows through COPY; the rows they leave equal
those written one statement each."""

from __future__ import annotations

import pytest

from ledger_core.account import Account
from ledger_core.commands import RecordUsage, UpdateAccount
from ledger_core.usage import UsageLine
from persistence.appending import AppendExtras
from projections import bulk
from projections.catchup import Projector
from service.ledger_service import LedgerService, make_view
from service.settings import Settings

pytestmark = pytest.mark.postgres
ACCOUNTS = 2 * bulk.MIN_STAGED_ROWS


def test_staged_upserts_leave_the_rows_one_statement_each_leaves(postgres_schema, monkeypatch):
    staged: list[str] = []
    stage_of = bulk._stage_of
    monkeypatch.setattr(bulk, "_stage_of", lambda table: staged.append(table) or stage_of(table))
    service = LedgerService(Settings(database=postgres_schema))
    try:
        ids = [f"a{n:03d}" for n in range(ACCOUNTS)]
        service.commands.save(*[Account.open(account_id=a, currency="SGD", billing_mode="prepaid",
                                             invoice_mode="consolidated", credit_limit="10") for a in ids])
        service.projector.catch_up()  # every new account row in one batch: inserted through the stage
        service.handle(UpdateAccount(ids[0], payer={"name": "Zoë \"quoted\"\ttabbed\\", "emails": ["z@example.com"]}))
        with service.commands.batch(AppendExtras(), accounts=set(ids)) as batch:
            for n, account in enumerate(ids):
                for product in ("sms", "voice"):
                    batch.handle(RecordUsage(account, idempotency_key=f"{product}-{n}", amount=f"0.{n + 1:04d}",
                                             line=UsageLine(product=product, application_id=None if n % 2 else "app",
                                                            quantity="1", unit="message")))
        service.projector.catch_up(until=batch.position, written=batch.recordings)  # updated in place
        assert any("accounts" in t for t in staged) and any("bills" in t for t in staged)
        assert len(staged) >= 3

        monkeypatch.setattr(bulk, "MIN_STAGED_ROWS", 10**9)  # the same events, one statement a row
        one_by_one = make_view(service.commands, prefix="one_by_one")
        Projector(service.commands, one_by_one, batch_events=10_000).catch_up()
        live = service.view.dump()
        assert one_by_one.dump() == live
        assert len(live["accounts"]) == ACCOUNTS and len(live["bills"]) == 2 * ACCOUNTS
        assert service.account_row(ids[0]).payer["name"] == "Zoë \"quoted\"\ttabbed\\"
        assert str(service.account_row(ids[-1]).figures.expecting_invoice) == f"-{2 * ACCOUNTS / 10000:.6f}"
    finally:
        service.close()
