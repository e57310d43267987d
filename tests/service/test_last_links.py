"""Each append chains to the last audit link this process wrote for the aggregate without
reading it back (persistence/last_links.py). Another process writing the same account in
between, or an append that lost its race and rolled back, must never leave a wrong link."""

from __future__ import annotations

import pytest
from eventsourcing.persistence import IntegrityError

from ledger_core.account import account_uuid
from ledger_core.commands import Recharge, RecordUsage
from ledger_core.money import Money
from ledger_core.usage import UsageLine
from service.audit import verify_log
from service.ledger_service import LedgerService
from service.settings import Settings
from tests.service.helpers import open_account


def usage(key: str) -> RecordUsage:
    return RecordUsage("acme", idempotency_key=key, amount="0.5", line=UsageLine(product="sms"))


def test_links_stay_whole_when_two_processes_write_one_account(database):
    here, there = LedgerService(Settings(database=database)), LedgerService(Settings(database=database))
    try:
        open_account(here, credit_limit="100")
        here.handle(usage("h1"))
        aggregate = account_uuid("acme")
        assert here.commands.recorder.last_links.link_of(aggregate, 2) is not None  # kept after the commit
        there.handle(usage("t1"))  # version 3, written by the other process
        here.handle(usage("h2"))  # version 4: the link of 3 is not known here, so it is read
        assert here.commands.recorder.last_links.link_of(aggregate, 4) is not None

        # A race lost and rolled back: both hold version 4, the other writes 5 first.
        stale = here.commands.account("acme")
        there.handle(Recharge("acme", amount="1", reference="r"))
        stale.record_usage(Money.of("1", "SGD"), UsageLine(product="sms"), unit_price=None, occurred_at=here.clock(),
                           idempotency_key="lost")
        with pytest.raises(IntegrityError):
            here.commands.save(stale)
        assert here.commands.recorder.last_links.link_of(aggregate, 5) is None  # the rolled-back link was not kept
        here.handle(usage("h3"))  # version 6, chained to the other process's 5
        report = verify_log(here)
        assert report.intact and report.checked >= 6
    finally:
        here.close()
        there.close()
