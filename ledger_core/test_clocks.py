"""Test clocks: sandbox time for trying out months of billing in minutes.

A test clock is a frozen moment an admin moves forward. An account opened on a clock is
attached to it for good (a real account never is), and for it the clock's time is "now"
everywhere: default occurrence times, cycle closes, hold expiry, due and overdue status,
the prediction. The clock knows its accounts, so advancing it runs their chores.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from ledger_core.account import LEDGER_NAMESPACE
from ledger_core.errors import InvalidInput, TestClockRule

TEST_CLOCK_ID_PATTERN = re.compile(r"^clock_[A-Za-z0-9]{1,32}$")
MAX_ACCOUNTS_PER_CLOCK = 100
MAX_ADVANCE = timedelta(days=2 * 366)  # one advance: two years of chores at most


def test_clock_uuid(clock_id: str) -> UUID:
    return uuid5(LEDGER_NAMESPACE, f"test-clock/{clock_id}")


def parse_test_clock_id(clock_id: object, field: str = "test_clock_id") -> str:
    if not isinstance(clock_id, str) or not TEST_CLOCK_ID_PATTERN.fullmatch(clock_id):
        raise InvalidInput("a test clock id is clock_ and 1-32 letters or digits", field=field)
    return clock_id


class TestClock(Aggregate):
    __test__ = False  # not a pytest test class, whatever its name says

    @staticmethod
    def create_id(clock_id: str) -> UUID:
        return test_clock_uuid(clock_id)

    @classmethod
    def start(cls, clock_id: str, frozen_time: datetime) -> TestClock:
        return cls(clock_id=parse_test_clock_id(clock_id, "id"), frozen_time=frozen_time)

    @event("Created")
    def __init__(self, clock_id: str, frozen_time: datetime) -> None:
        self.clock_id = clock_id
        self.frozen_time = frozen_time
        self.account_ids: list[str] = []

    def attach(self, account_id: str) -> None:
        if len(self.account_ids) >= MAX_ACCOUNTS_PER_CLOCK:
            raise TestClockRule(f"a test clock holds at most {MAX_ACCOUNTS_PER_CLOCK} accounts",
                                test_clock_id=self.clock_id)
        self._attached(account_id=account_id)

    @event("AccountAttached")
    def _attached(self, account_id: str) -> None:
        self.account_ids.append(account_id)

    def check_advance(self, to: datetime) -> None:
        """Whether the clock may go to ``to`` (in steps: service/test_clocks.py runs the chores between)."""
        self._require_forward(to)
        if to - self.frozen_time > MAX_ADVANCE:
            raise TestClockRule(f"one advance moves at most {MAX_ADVANCE.days} days; advance in steps",
                                field="frozen_time")

    def advance(self, to: datetime) -> None:
        self._require_forward(to)
        self._advanced(frozen_time=to)

    def _require_forward(self, to: datetime) -> None:
        if to <= self.frozen_time:
            raise TestClockRule(f"a test clock only moves forward: {to.isoformat()} is not after "
                                f"{self.frozen_time.isoformat()}", field="frozen_time")

    @event("Advanced")
    def _advanced(self, frozen_time: datetime) -> None:
        self.frozen_time = frozen_time
