"""Group commit: money movements that arrive together in one process are decided together
and saved in one transaction, then each caller gets its own answer.

A caller hands its command to ``GroupCommit.submit``. If no batch is being decided, the
caller leads: it takes the queued commands (its own first, at most ``max_commands``),
decides them in a LedgerBatch against the accounts held in memory, saves them in one
append with their key claims and audit causes, catches the read model up once, and wakes
each caller with its own result: its booking and figures right after its own command,
its own refusal (a refused command changes nothing and never fails its neighbours), its
own replay of an earlier request with the same key. Callers that arrive meanwhile queue;
when the leader is done it hands the lead to the first of them. A queue past
``max_queued`` refuses at once (503 overloaded, Retry-After) instead of growing.

Every caller's command runs in a copy of its own context, so the audit cause it records
is its own request's, never the leader's.

A batch that loses a race (another process changed one of its accounts, or claimed one
of its keys), or that fails in any other way, stored nothing: its commands are then run
one by one, each in a write of its own with the usual retries, so each gets the answer it
would have had alone. A lone command skips the batch and is written alone.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from eventsourcing.persistence import Recording
from prometheus_client import Counter, Histogram

from commands.bookings import Booking, Standing
from commands.ledger import Ledger, LedgerBatch
from ledger_core import commands as c
from ledger_core.client_key import KeyKind
from ledger_core.errors import LedgerError, Overloaded, WriteInterrupted
from persistence.appending import AppendExtras

log = logging.getLogger(__name__)

# The commands decided together: one account each, no aggregate of their own to create.
COMBINED: tuple[type[c.Command], ...] = (c.RecordUsage, c.Recharge, c.PostCharge, c.Reserve, c.Settle, c.Release)
KEY_KINDS: dict[type[c.Command], KeyKind] = {c.RecordUsage: KeyKind.USAGE, c.Recharge: KeyKind.RECHARGE,
                                            c.PostCharge: KeyKind.CHARGE}

BATCH_COMMANDS = Histogram("ledger_group_commit_batch_commands", "Commands decided and saved together",
                           buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
FELL_BACK = Counter("ledger_group_commit_fallbacks_total",
                    "Combined batches that stored nothing (a lost race, a failure) and ran one by one")
REFUSED = Counter("ledger_group_commit_overloaded_total", "Commands refused because the queue was full")


@dataclass(frozen=True)
class GroupCommitLimits:
    max_commands: int = 64  # per batch; 1 writes every command alone
    max_queued: int = 1_000  # commands waiting for a batch, per process
    wait_us: int = 0  # how long a leader waits for more commands before deciding

    def __post_init__(self) -> None:
        if not 1 <= self.max_commands <= 10_000 or not 1 <= self.max_queued <= 1_000_000:
            raise ValueError("group commit: max_commands is 1..10000 and max_queued 1..1000000")
        if not 0 <= self.wait_us <= 100_000:
            raise ValueError("group commit: wait_us is 0..100000")


@dataclass(eq=False)
class _Pending:
    command: c.Command
    context: contextvars.Context
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # woken to lead the next batch, not with a result
    answered: bool = False
    result: Any = None
    error: BaseException | None = None

    def succeed(self, result: Any) -> None:
        self.result, self.error, self.answered = result, None, True

    def fail(self, error: BaseException) -> None:
        self.result, self.error, self.answered = None, error, True

    def answer(self) -> Any:
        if not self.answered:
            raise WriteInterrupted("the batch this write was part of was interrupted; retry it with its key")
        if self.error is not None:
            raise self.error
        return self.result


class GroupCommit:
    def __init__(self, ledger: Ledger, write_alone: Callable[[c.Command], Any],
                 catch_up: Callable[[int, Sequence[Recording]], None], limits: GroupCommitLimits) -> None:
        """``write_alone(command)`` writes one command and catches the read model up with it
        (LedgerService.run); ``catch_up(position, recordings)`` brings the read model up to a
        committed batch. Neither raises once the write has committed."""
        self.ledger, self.write_alone, self.catch_up, self.limits = ledger, write_alone, catch_up, limits
        self._lock = threading.Lock()
        self._queue: deque[_Pending] = deque()
        self._leading = False
        self.batches_combined = 0  # observable: batches of two or more commands saved together
        self.fallbacks = 0

    def submit(self, command: c.Command) -> Any:
        """The command's own result (or its own error), once it is committed and readable."""
        pending = _Pending(command, contextvars.copy_context())
        with self._lock:
            if len(self._queue) >= self.limits.max_queued:
                REFUSED.inc()
                raise Overloaded("too many writes are waiting in this server process; retry shortly",
                                 retry_after_s=1)
            self._queue.append(pending)
            lead = not self._leading
            self._leading = True
        if not lead:
            pending.done.wait()
            if not pending.lead:
                return pending.answer()
            pending.done.clear()
        self._lead(pending)
        return pending.answer()

    def _lead(self, own: _Pending) -> None:
        taken: list[_Pending] = []
        try:
            if self.limits.wait_us and len(self._queue) < self.limits.max_commands:
                time.sleep(self.limits.wait_us / 1_000_000)
            with self._lock:
                while self._queue and len(taken) < self.limits.max_commands:
                    taken.append(self._queue.popleft())
            BATCH_COMMANDS.observe(len(taken))
            if len(taken) == 1:
                self._alone(taken[0])
            else:
                self._together(taken)
        finally:  # whatever happened, every caller taken is woken, and the lead passes on
            with self._lock:
                if not taken and own in self._queue:
                    self._queue.remove(own)  # stopped before taking anything: its own caller gets WriteInterrupted
                successor = self._queue[0] if self._queue else None
                self._leading = successor is not None
            for p in taken:
                p.done.set()
            if successor is not None:
                successor.lead = True
                successor.done.set()

    def _alone(self, p: _Pending) -> None:
        try:
            p.succeed(p.context.run(self.write_alone, p.command))
        except Exception as error:  # noqa: BLE001 - the caller's own error, raised in its own request
            p.fail(error)

    def _together(self, taken: list[_Pending]) -> None:
        keys = [(p.command.account_id, KEY_KINDS[type(p.command)], p.command.idempotency_key)  # type: ignore[attr-defined]
                for p in taken if type(p.command) in KEY_KINDS and p.command.idempotency_key]  # type: ignore[attr-defined]
        try:
            with self.ledger.batch(AppendExtras(), keys=keys) as batch:
                for p in taken:
                    self._decide(batch, p)
        except Exception:  # noqa: BLE001 - nothing was stored: each command gets the answer it would have alone
            log.debug("a combined batch stored nothing; its commands run one by one", exc_info=True)
            self.fallbacks += 1
            FELL_BACK.inc()
            for p in taken:
                self._alone(p)
            return
        self.batches_combined += 1
        for p in taken:
            if isinstance(p.result, Booking) and not p.result.replayed:
                p.succeed(replace(p.result, position=batch.position))
        if batch.position is not None:
            self.catch_up(batch.position, batch.recordings)

    @staticmethod
    def _decide(batch: LedgerBatch, p: _Pending) -> None:
        """The command's own answer: a refusal (a LedgerError) is its own and changes nothing
        of the batch; any other failure fails the batch, which then runs one by one."""
        try:
            result = p.context.run(batch.handle, p.command)
        except LedgerError as error:
            p.fail(error)
            return
        if isinstance(result, Booking) and not result.replayed:
            account = batch.state.accounts[result.account_id]
            result = replace(result, after=Standing.of(account))  # its own figures, before its neighbours'
        p.succeed(result)
