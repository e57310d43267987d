"""Loading many aggregates at once gives exactly what the library's one-by-one load gives."""

from __future__ import annotations

from commands.ledger import SNAPSHOT_INTERVAL_EVENTS
from ledger_core.account import account_uuid
from ledger_core.commands import Recharge, RecordUsage
from ledger_core.usage import UsageLine
from persistence.bulk_load import load_aggregates
from tests.service.helpers import open_account


def test_bulk_loaded_accounts_equal_one_by_one_loads_with_and_without_snapshots(service):
    open_account(service, "long", billing_mode="postpaid", credit_limit="100000")
    open_account(service, "short")
    for n in range(SNAPSHOT_INTERVAL_EVENTS + 30):  # past a snapshot, and events after it
        service.commands.handle(RecordUsage("long", idempotency_key=f"u{n}", amount="0.000003",
                                            line=UsageLine(product="sms")))
    service.commands.handle(Recharge("short", amount="5"))
    ids = [account_uuid(a) for a in ("long", "short", "never-opened")]
    loaded = load_aggregates(service.commands, ids)
    assert set(loaded) == {account_uuid("long"), account_uuid("short")}
    snapshots = list(service.commands.snapshots.get(account_uuid("long")))
    assert snapshots, "the long account must have a snapshot for this test to mean anything"
    for name in ("long", "short"):
        expected = service.commands.repository.get(account_uuid(name))
        got = loaded[account_uuid(name)]
        assert (got.version, got.figures, got.holds) == (expected.version, expected.figures, expected.holds)
    assert loaded[account_uuid("long")].version == 1 + SNAPSHOT_INTERVAL_EVENTS + 30
