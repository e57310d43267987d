"""Group commit (service/group_commit.py): many threads of one process writing at once to few
accounts, with idempotent repeats, refusals and reservations, get exactly the answers a
one-at-a-time ledger gives, and the books hold exactly what was accepted."""

from __future__ import annotations

import random
import threading
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from commands.bookings import Booking
from ledger_core.account import Account
from ledger_core.commands import Command, Recharge, RecordUsage, Release, Reserve, Settle
from ledger_core.errors import LedgerError, Overloaded
from ledger_core.usage import UsageLine
from persistence.database import DatabaseConfig
from service.group_commit import GroupCommit, GroupCommitLimits
from service.ledger_service import LedgerService
from service.settings import Settings
from tests.conftest import FakeClock
from tests.service.helpers import open_account

THREADS = 8
COMBINING = {"group_commit_wait_us": 5_000}  # the leader waits for the others: batches surely form
SMS = UsageLine(product="sms")


def open_books(svc: LedgerService) -> None:
    open_account(svc, "blocky", usage_policy="block")  # prepaid: usage past the balance is refused
    open_account(svc, "holder", billing_mode="postpaid", credit_limit="100")
    open_account(svc, "payee")
    svc.handle(Recharge("blocky", amount="1.00", reference="seed"))


def work(rng: random.Random) -> list[list[Command]]:
    """Each thread's commands, in the order it sends them."""
    per_thread: list[list[Command]] = [[] for _ in range(THREADS)]
    for n in range(20):  # 20 usages of 0.10 on a balance of 1.00: ten land, ten are refused
        usage = RecordUsage("blocky", idempotency_key=f"u{n}", amount="0.10", line=SMS)
        for t in rng.sample(range(THREADS), 2):  # each sent twice, by two threads: a retry racing its first try
            per_thread[t].append(usage)
    for n in range(10):
        recharge = Recharge("payee", amount="2.50", reference=f"pay-{n}", idempotency_key=f"k{n}")
        for t in rng.sample(range(THREADS), 2):
            per_thread[t].append(recharge)
    for t in range(THREADS):
        for i in range(4):
            rid = f"r-{t}-{i}"
            per_thread[t].append(Reserve("holder", reservation_id=rid, amount="1.00"))
            per_thread[t].append(Settle("holder", rid, amount="0.40", line=SMS) if i % 2 else Release("holder", rid))
    for commands in per_thread:
        rng.shuffle(commands)
        # a thread settles or releases its own hold only after reserving it
        holds = [c for c in commands if isinstance(c, Reserve)]
        ends = [c for c in commands if isinstance(c, (Settle, Release))]
        others = [c for c in commands if not isinstance(c, (Reserve, Settle, Release))]
        commands[:] = others[: len(others) // 2] + holds + others[len(others) // 2:] + ends
    return per_thread


def run_at_once(svc: LedgerService, per_thread: list[list[Command]]) -> list[tuple[Command, Any]]:
    results: list[tuple[Command, Any]] = []
    lock, start = threading.Lock(), threading.Barrier(THREADS)

    def send(commands: list[Command]) -> None:
        start.wait()
        for command in commands:
            try:
                outcome: Any = svc.handle(command)
            except LedgerError as error:
                outcome = error
            with lock:
                results.append((command, outcome))

    threads = [threading.Thread(target=send, args=(commands,)) for commands in per_thread]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_writes_answer_as_one_at_a_time_and_the_books_hold_what_was_accepted(
        database: DatabaseConfig, clock: FakeClock, tmp_path: Path):
    svc = LedgerService(Settings(database=database, **COMBINING), clock=clock)
    model = LedgerService(Settings(database=DatabaseConfig(f"sqlite:///{tmp_path}/model.db"),
                                   group_commit_max_commands=1), clock=clock)
    open_books(svc), open_books(model)
    results = run_at_once(svc, work(random.Random(7)))

    assert svc.group_commit.batches_combined > 0  # writes were in fact decided together
    errors = [o for _, o in results if isinstance(o, LedgerError)]
    assert {e.code for e in errors} == {"insufficient_credits"}  # one refusal never failed a neighbour
    booked = [(c, o) for c, o in results if isinstance(o, Booking) and not o.replayed]
    replays = [(c, o) for c, o in results if isinstance(o, Booking) and o.replayed]
    assert sum(1 for c, _ in booked if isinstance(c, RecordUsage)) == 10
    assert len(errors) == 20  # the other ten usages, each refused on both tries
    assert len(replays) == 10 + 10  # every accepted usage and recharge: its twin replays it
    first = {(c.account_id, c.idempotency_key): o for c, o in booked if isinstance(c, (RecordUsage, Recharge))}
    for c, o in replays:
        assert o.transaction_no == first[(c.account_id, c.idempotency_key)].transaction_no  # type: ignore[attr-defined]

    # The same accepted commands, one at a time in the order the ledger put them: the same
    # transaction numbers and, right after each, the same figures as its combined answer.
    for command, combined in sorted(booked, key=lambda co: (co[1].account_id, co[1].after.version)):
        alone = model.handle(command)
        assert alone.transaction_no == combined.transaction_no
        assert (alone.after.figures, alone.after.version) == (combined.after.figures, combined.after.version)
        assert combined.position is not None
    for command in {c for c, o in results if isinstance(o, LedgerError)}:
        with pytest.raises(LedgerError) as refused:
            model.handle(command)
        assert refused.value.code == "insufficient_credits"

    # The read models hold exactly that: caught up, to the last digit.
    for account in ("blocky", "holder", "payee"):
        row, expected = svc.account_row(account), model.account_row(account)
        assert (row.figures, row.version) == (expected.figures, expected.version)
    assert svc.account_row("blocky").figures.current_balance == Decimal("0.00")
    assert svc.account_row("holder").figures.reserved == 0
    assert svc.account_row("holder").figures.expecting_invoice == Decimal("-0.40") * 2 * THREADS
    assert svc.account_row("payee").figures.current_balance == Decimal("25.00")
    svc.close(), model.close()


class RacingClock(FakeClock):
    """Another process commits to the account while the batch decides, ``races`` times."""

    def __init__(self, rival: LedgerService, races: int) -> None:
        super().__init__()
        self.rival, self.races = rival, races

    def __call__(self):  # type: ignore[no-untyped-def]
        if self.races > 0:
            self.races -= 1
            self.rival.handle(Recharge("acme", amount="1", reference=f"rival-{self.races}"))
        return super().__call__()


@pytest.mark.postgres
def test_a_batch_that_loses_a_race_stores_nothing_and_each_write_lands_alone(postgres_schema):
    rival = LedgerService(Settings(database=postgres_schema))
    open_account(rival, billing_mode="postpaid", credit_limit="10")
    svc = LedgerService(Settings(database=postgres_schema, group_commit_wait_us=100_000),
                        clock=RacingClock(rival, races=1))
    svc.commands.account("acme")  # cached at version 1, as a long-running process holds it
    commands = [RecordUsage("acme", idempotency_key=f"u{n}", amount="0.25", line=SMS) for n in range(3)]
    results = run_each_in_a_thread(svc, commands)
    assert svc.group_commit.fallbacks == 1 and svc.group_commit.batches_combined == 0
    assert all(isinstance(r, Booking) and not r.replayed for r in results)
    assert sorted(r.after.version for r in results) == [3, 4, 5]  # after the rival's recharge at version 2
    rival.projector.catch_up()
    figures = rival.account_row("acme").figures
    assert (figures.expecting_invoice, figures.amount_due) == (Decimal("-0.75"), Decimal("1"))
    svc.close(), rival.close()


def run_each_in_a_thread(svc: LedgerService, commands: list[Command]) -> list[Any]:
    results: list[Any] = [None] * len(commands)

    def send(n: int) -> None:
        try:
            results[n] = svc.handle(commands[n])
        except LedgerError as error:
            results[n] = error

    threads = [threading.Thread(target=send, args=(n,)) for n in range(len(commands))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_a_committed_batch_whose_snapshot_cannot_be_stored_answers_each_write_once(
        database: DatabaseConfig, clock: FakeClock, monkeypatch: pytest.MonkeyPatch):
    """The snapshot comes after the batch's commit: had its failure failed the batch, the
    fallback would run each command again, alone: holds refused as already there, usage
    without a key booked twice."""
    svc = LedgerService(Settings(database=database, group_commit_wait_us=100_000), clock=clock)
    open_account(svc, billing_mode="postpaid", credit_limit="100")
    svc.commands.snapshotting_intervals = {Account: 1}  # every save snapshots

    def broken(*_: Any, **__: Any) -> None:
        raise OSError("the snapshot store went away")

    monkeypatch.setattr(svc.commands.snapshots, "put", broken)
    commands: list[Command] = [Reserve("acme", reservation_id=f"r{n}", amount="1.00") for n in range(4)]
    commands += [RecordUsage("acme", idempotency_key=f"u{n}", amount="0.25", line=SMS) for n in range(4)]
    results = run_each_in_a_thread(svc, commands)
    assert svc.group_commit.batches_combined > 0 and svc.group_commit.fallbacks == 0
    assert all(isinstance(r, Booking) and not r.replayed for r in results), results
    figures = svc.account_row("acme").figures
    assert (figures.reserved, figures.expecting_invoice) == (Decimal("4.00"), Decimal("-1.00"))
    assert svc.commands.account("acme").version == 1 + len(commands)
    svc.close()


def test_a_full_queue_refuses_at_once_and_writes_nothing(service: LedgerService):
    open_account(service, billing_mode="postpaid", credit_limit="10")
    entered, release = threading.Event(), threading.Event()
    ledger = service.commands

    def slow_write(command: Command) -> Any:
        """A write held until the test lets it go."""
        entered.set()
        release.wait(10)
        return ledger.handle(command)

    combiner = GroupCommit(ledger, slow_write, lambda *_: None, GroupCommitLimits(max_commands=1, max_queued=1))
    usage = [RecordUsage("acme", idempotency_key=f"q{n}", amount="1", line=SMS) for n in range(3)]
    first = threading.Thread(target=combiner.submit, args=(usage[0],))
    first.start()
    assert entered.wait(10)  # leading, and held
    second = threading.Thread(target=combiner.submit, args=(usage[1],))
    second.start()
    while len(combiner._queue) < 1:  # the one waiting behind the leader's
        threading.Event().wait(0.01)
    with pytest.raises(Overloaded) as refused:
        combiner.submit(usage[2])
    assert refused.value.code == "overloaded" and refused.value.category == "unavailable"
    release.set()
    first.join(10), second.join(10)
    assert ledger.account("acme").version == 3  # the two queued landed; the refused one did not


def test_limits_are_checked():
    with pytest.raises(ValueError):
        GroupCommitLimits(max_commands=0)
    with pytest.raises(ValueError):
        GroupCommitLimits(wait_us=-1)
    assert replace(GroupCommitLimits(), max_commands=1).max_commands == 1


def test_a_leader_stopped_before_it_took_its_batch_passes_the_lead_and_leaves_nothing_queued(service: LedgerService):
    open_account(service, billing_mode="postpaid", credit_limit="10")
    combiner = GroupCommit(service.commands, service.commands.handle, lambda *_: None, GroupCommitLimits(wait_us=1_000))

    def interrupted(_: float) -> None:
        raise KeyboardInterrupt  # what a worker's shutdown raises in the middle of a wait

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("service.group_commit.time.sleep", interrupted)
        with pytest.raises(KeyboardInterrupt):
            combiner.submit(RecordUsage("acme", idempotency_key="stopped", amount="1", line=SMS))
    assert not combiner._queue and not combiner._leading
    answers: list[Any] = []
    thread = threading.Thread(target=lambda: answers.append(
        combiner.submit(RecordUsage("acme", idempotency_key="next", amount="1", line=SMS))))
    thread.start()
    thread.join(10)
    assert not thread.is_alive()  # the next write is not stuck behind a lead nobody holds
    assert answers[0].after.version == 2
