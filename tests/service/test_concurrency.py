"""Two writers on one account, each with its own application (own cache, as two processes
would have), on a real PostgreSQL server: no update is lost."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from ledger_core.commands import CloseCycles, InvoiceTopup, PaymentReceived, Recharge, RecordUsage, Reserve, Settle
from ledger_core.errors import ConcurrentModification
from ledger_core.usage import UsageLine
from projections.rows import InvoiceFilter
from service.invoicing import issue_manual_invoice
from service.ledger_service import LedgerService
from service.settings import Settings
from tests.conftest import FakeClock
from tests.service.helpers import open_account

pytestmark = pytest.mark.postgres
POSTS_PER_WRITER = 60


def test_two_threads_posting_to_one_account_lose_no_update(postgres_schema):
    writers = [LedgerService(Settings(database=postgres_schema)) for _ in range(2)]
    open_account(writers[0], credit_limit="0")
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def post(n: int, svc: LedgerService) -> None:
        start.wait()
        for i in range(POSTS_PER_WRITER):
            try:
                svc.handle(RecordUsage("acme", idempotency_key=f"w{n}-{i}", amount="0.000001",
                                       line=UsageLine(product="sms")))
                outcomes.append("booked")
            except ConcurrentModification:
                outcomes.append("409")

    threads = [threading.Thread(target=post, args=(n, svc)) for n, svc in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    booked = outcomes.count("booked")
    assert len(outcomes) == 2 * POSTS_PER_WRITER
    assert booked >= POSTS_PER_WRITER  # retries absorb nearly every race
    for svc in writers:
        svc.projector.catch_up()
        assert svc.account_row("acme").figures.expecting_invoice == -booked * Decimal("0.000001")
        assert svc.commands.account("acme").version == 1 + booked
    for svc in writers:
        svc.close()


class RacingClock(FakeClock):
    """Lets another writer commit while a command is deciding, `races` times."""

    def __init__(self, rival: LedgerService, races: int) -> None:
        super().__init__()
        self.rival, self.races = rival, races

    def __call__(self):
        if self.races > 0:
            self.races -= 1
            self.rival.handle(Recharge("acme", amount="1", reference=f"rival-{self.races}"))
        return super().__call__()


def test_the_loser_of_a_version_conflict_retries_and_succeeds(postgres_schema):
    rival = LedgerService(Settings(database=postgres_schema))
    open_account(rival)
    loser = LedgerService(Settings(database=postgres_schema), clock=RacingClock(rival, races=1))
    loser.commands.account("acme")  # warm its cache at version 1, as a long-running process would be
    booking = loser.handle(RecordUsage("acme", idempotency_key="u", amount="0.5", line=UsageLine(product="sms")))
    assert loser.commands.conflicts_retried == 1
    assert booking.transaction_no == "acme:00000003"  # after the rival's recharge at version 2
    assert loser.account_row("acme").figures.current_balance == Decimal("0.5")
    rival.close(), loser.close()


def test_a_writer_that_keeps_losing_gets_a_clear_conflict_and_writes_nothing(postgres_schema):
    rival = LedgerService(Settings(database=postgres_schema))
    open_account(rival)
    loser = LedgerService(Settings(database=postgres_schema), clock=RacingClock(rival, races=100))
    with pytest.raises(ConcurrentModification) as error:
        loser.handle(RecordUsage("acme", idempotency_key="u", amount="0.5", line=UsageLine(product="sms")))
    assert error.value.code == "concurrent_modification"
    rival.projector.catch_up()
    row = rival.account_row("acme")
    assert row.figures.expecting_invoice == 0  # the usage never landed
    assert row.figures.amount_due == Decimal(100 - loser.clock.races)  # only the rival's recharges
    assert rival.commands.account("acme").version == 1 + (100 - loser.clock.races)
    rival.close(), loser.close()


CLOSERS = 4
ACCOUNTS_PER_CLOSER = 6


def test_concurrent_closes_take_gapless_unique_invoice_numbers(postgres_schema):
    """Four processes' worth of writers close cycles of different accounts at once; every
    invoice gets a number, and the numbers are exactly 1..N: no gap, no duplicate."""
    clock = FakeClock()
    clock.now = clock.now.replace(month=11, day=20)
    writers = [LedgerService(Settings(database=postgres_schema), clock=clock) for _ in range(CLOSERS)]
    accounts = [f"acct-{w}-{i}" for w in range(CLOSERS) for i in range(ACCOUNTS_PER_CLOSER)]
    for account_id in accounts:
        open_account(writers[0], account_id, billing_mode="prepaid", invoice_mode="consolidated")
        writers[0].run(lambda l, a=account_id: l.handle(RecordUsage(a, idempotency_key="u", amount="1",
                                                                    line=UsageLine(product="sms"))))
    clock.now = clock.now.replace(month=12, day=2)
    start = threading.Barrier(CLOSERS)
    made: list[str] = []

    def close(w: int) -> None:
        start.wait()
        for i in range(ACCOUNTS_PER_CLOSER):
            made.extend(writers[w].commands.handle(CloseCycles(f"acct-{w}-{i}")))

    threads = [threading.Thread(target=close, args=(w,)) for w in range(CLOSERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == len(accounts)  # one invoice per account, none lost to a race
    writers[0].projector.catch_up()
    numbers = sorted(writers[0].view.invoice(i).number for i in made)
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, len(accounts) + 1)]
    assert sum(w.commands.conflicts_retried for w in writers) > 0  # the race did happen
    for svc in writers:
        svc.close()


def test_a_create_and_claim_sent_twice_at_once_issues_one_invoice(postgres_schema):
    """A client's retry racing its first try: both answer with the same invoice, one is issued."""
    writers = [LedgerService(Settings(database=postgres_schema)) for _ in range(2)]
    open_account(writers[0], billing_mode="prepaid", invoice_mode="consolidated")
    paid = PaymentReceived("card-1", method="card", reference="C1")
    start = threading.Barrier(2)
    answers: list[tuple[str, bool]] = []

    def send(svc: LedgerService) -> None:
        start.wait()
        answers.append(issue_manual_invoice(svc, InvoiceTopup("acme", amount="25", description="Credits", paid=paid)))

    threads = [threading.Thread(target=send, args=(svc,)) for svc in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(created for _, created in answers) == [False, True]
    assert len({invoice_id for invoice_id, _ in answers}) == 1
    writers[0].projector.catch_up()
    assert [i.invoice_id for i in writers[0].view.invoices(InvoiceFilter(account_id="acme"), 10)[0]] == [answers[0][0]]
    assert writers[0].account_row("acme").figures.usable_credits == Decimal("25")
    for svc in writers:
        svc.close()


def test_a_batch_computed_on_rows_another_process_moved_on_is_stale_not_an_invariant_error(database, clock):
    """Two processes project the same log. One reads the position, the other lands a batch,
    the first then reads the rows: applying its events to them would apply them twice
    (a settle would take the hold a second time: "reserved credits went negative")."""
    from projections.batches import StalePosition
    from projections.catchup import Projector
    from service.ledger_service import make_view

    settings = Settings(database=database)
    first, second = LedgerService(settings, clock=clock), LedgerService(settings, clock=clock)
    try:
        account = open_account(first)
        first.handle(Recharge(account, amount="10"))
        first.handle(Reserve(account, reservation_id="h1", amount="4"))
        before_settle = first.projector.position
        settled = first.commands.handle(Settle(account, "h1", amount="3",
                                               line=UsageLine(product="call")))  # written, not projected
        notifications = first.commands.recorder.select_notifications(start=before_settle + 1, limit=10)
        assert notifications[-1].id == settled.position
        second.projector.catch_up()  # the other process lands the settle
        with pytest.raises(StalePosition):
            # a view of its own: no rows kept from an earlier batch of this process
            Projector(first.commands, make_view(first.commands, create_tables=False))._apply(before_settle, notifications)
        assert first.projector.catch_up() == settled.position  # and catching up goes on normally
        assert first.account_row(account).figures.reserved == 0
        assert first.account_row(account).figures.current_balance == Decimal("7")
    finally:
        first.close()
        second.close()
