"""Test clocks (ledger_core/test_clocks.py): the handlers of CreateTestClock and
AdvanceTestClock, and the time a command on an attached account runs at."""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from commands.bookings import Clock
from commands.unit_of_work import UnitOfWork, load
from ledger_core.account import Account, account_uuid, parse_account_id
from ledger_core.commands import AdvanceTestClock, ApproveInvoice, Command, CreateTestClock, OpenAccount, VoidInvoice
from ledger_core.errors import ConcurrentModification, InvalidInput, TestClockNotFound
from ledger_core.invoicing import parse_invoice_id
from ledger_core.test_clocks import TestClock, parse_test_clock_id, test_clock_uuid

MAX_REMEMBERED_ACCOUNTS = 100_000
from persistence.appending import caused_by, current_cause


def load_test_clock(app: Application[UUID], clock_id: str, *, to_change: bool = True) -> TestClock:
    parse_test_clock_id(clock_id)
    return load(app, test_clock_uuid(clock_id), TestClock,
                lambda: TestClockNotFound(f"no test clock {clock_id!r}", test_clock_id=clock_id), to_change=to_change)


def frozen_clock(app: Application[UUID], clock_id: str) -> Callable[[], datetime]:
    """The clock an attached account's commands read: the test clock's time when they run."""
    frozen = load_test_clock(app, clock_id, to_change=False).frozen_time
    return lambda: frozen


class AccountClocks:
    """Which test clock each account runs on, remembered per process: an account is attached
    when it is opened and never after, so what is known once stays true. Bounded: past
    ``limit`` accounts the oldest are forgotten (and looked up again when needed)."""

    def __init__(self, limit: int = MAX_REMEMBERED_ACCOUNTS) -> None:
        self.limit = limit
        self._known: OrderedDict[str, str | None] = OrderedDict()

    def clock_of(self, app: Application[UUID], command: Command, real: Clock, known: Mapping[str, Account]) -> Clock:
        """The time ``command`` runs at: its account's test clock's, else ``real``. ``known``:
        accounts already in memory (a batch's), read before anything else."""
        if isinstance(command, OpenAccount):
            clock_id = command.test_clock_id
        else:
            account_id = _account_of(command)
            clock_id = None if account_id is None else self._clock_id(app, account_id, known)
        return real if clock_id is None else frozen_clock(app, clock_id)

    def unknown_account(self, command: Command) -> str | None:
        """The account ``command`` runs on, if its clock is not remembered yet: the caller
        may load it once for both the clock and the write (``known``)."""
        if isinstance(command, OpenAccount):
            return None
        account_id = _account_of(command)
        return None if account_id is None or account_id in self._known else account_id

    def _clock_id(self, app: Application[UUID], account_id: str, known: Mapping[str, Account]) -> str | None:
        if account_id in self._known:
            return self._known[account_id]
        account = known.get(account_id) or _cached_account(app, account_id)
        if account is None:
            return None  # not opened (yet): nothing to remember
        self._known[account_id] = account.test_clock_id
        if len(self._known) > self.limit:
            self._known.popitem(last=False)
        return account.test_clock_id


@contextmanager
def running_at(clock: Clock, real: Clock) -> Iterator[None]:
    """Events appended inside record the business time beside the real one their audit
    record keeps anyway (recorded_at), when the two differ."""
    if clock is real:
        yield
        return
    with caused_by(**current_cause(), business_time=clock().isoformat()):
        yield


def _account_of(command: Command) -> str | None:
    if isinstance(command, (ApproveInvoice, VoidInvoice)):
        parsed = parse_invoice_id(command.invoice_id)
        return None if parsed is None else parsed[0]
    account_id = getattr(command, "account_id", None)
    return account_id if isinstance(account_id, str) else None


def _cached_account(app: Application[UUID], account_id: str) -> Account | None:
    try:
        found = app.repository.get(account_uuid(parse_account_id(account_id)), deepcopy_from_cache=False)
    except (InvalidInput, AggregateNotFoundError):
        return None  # the handler answers for it
    return found if isinstance(found, Account) else None


def create_test_clock(command: CreateTestClock, unit: UnitOfWork) -> TestClock:
    clock = TestClock.start(command.clock_id or f"clock_{secrets.token_hex(8)}", command.frozen_time)
    if clock.id in unit.app.repository:
        raise InvalidInput(f"test clock {clock.clock_id!r} exists already", field="id")
    try:
        unit.save_alone(clock)
    except IntegrityError:
        raise InvalidInput(f"test clock {clock.clock_id!r} exists already", field="id") from None
    return clock


def advance_test_clock(command: AdvanceTestClock, unit: UnitOfWork) -> TestClock:
    clock = load_test_clock(unit.app, command.clock_id)
    clock.advance(command.frozen_time)
    try:
        unit.save_alone(clock)
    except IntegrityError:
        raise ConcurrentModification("the test clock moved meanwhile; read it and try again",
                                     test_clock_id=command.clock_id) from None
    return clock
