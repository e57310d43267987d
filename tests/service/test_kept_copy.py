"""A single write decides first on the account as this process last saved it, without
reading newer events (commands/unit_of_work.py SingleWrite). What another process wrote
meanwhile is never lost: the save collides and the retry reads it, and a refusal decided
on the kept copy is decided again on what the store holds."""

from __future__ import annotations

import eventsourcing.utils
import pytest

from ledger_core.commands import Recharge, RecordUsage
from ledger_core.usage import UsageLine
from service.ledger_service import LedgerService
from service.settings import Settings
from tests.service.helpers import figures, open_account


def usage(key: str, amount: str) -> RecordUsage:
    return RecordUsage("acme", idempotency_key=key, amount=amount, line=UsageLine(product="sms"))


def test_what_another_process_wrote_is_read_when_the_kept_copy_is_behind(database):
    here, there = LedgerService(Settings(database=database)), LedgerService(Settings(database=database))
    try:
        open_account(here, billing_mode="prepaid", usage_policy="block")
        here.handle(Recharge("acme", amount="1.00", reference="first"))
        assert here.handle(usage("h1", "0.60")).after.version == 3  # kept here at version 3

        there.handle(Recharge("acme", amount="5.00", reference="elsewhere"))  # version 4, unseen here
        # On the kept copy (0.40 usable) this is refused; the store says 5.40: it is booked.
        booked = here.handle(usage("h2", "2.00"))
        assert booked.after.version == 5 and f"{booked.after.figures.usable_credits:f}" == "3.400000"

        there.handle(usage("t1", "0.10"))  # version 6, unseen here
        retried = here.commands.conflicts_retried
        booked = here.handle(usage("h3", "0.20"))  # decided on version 5, collides, retried on 6
        assert booked.after.version == 7 and here.commands.conflicts_retried == retried + 1
        assert figures(here)["usable_credits"] == figures(there)["usable_credits"] == "3.100000"
        assert here.handle(usage("h3", "0.20")).replayed  # a repeat stays a repeat
    finally:
        here.close()
        there.close()


@pytest.mark.postgres
def test_a_lost_race_is_retried_at_once_not_after_the_libraries_connection_retry_sleep(postgres_schema, monkeypatch):
    """A write that lost its race used to surface from the library as a lost connection
    (PipelineAborted), which its retry slept 0.2 s on before the IntegrityError came."""
    slept: list[float] = []
    monkeypatch.setattr(eventsourcing.utils, "sleep", slept.append)
    here, there = LedgerService(Settings(database=postgres_schema)), LedgerService(Settings(database=postgres_schema))
    try:
        open_account(here, credit_limit="100")
        for n in range(6):  # taking turns: each write starts from a copy the other made stale
            (here if n % 2 else there).handle(usage(f"turn-{n}", "0.01"))
        assert here.commands.conflicts_retried + there.commands.conflicts_retried >= 4
        assert there.handle(usage("turn-0", "0.01")).replayed  # a repeated key collides too
        assert slept == []
    finally:
        here.close()
        there.close()
