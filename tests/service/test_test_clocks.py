"""Test clocks at the service layer: the batch (Kafka) path, the scheduler's sweeps and
the ordering of chores while a clock advances."""

from __future__ import annotations

from datetime import datetime, timezone

from ledger_core.commands import RecordUsage, Reserve
from ledger_core.usage import UsageLine
from persistence.appending import AppendExtras
from projections.rows import EventFilter, TransactionFilter
from service.invoicing import close_due_cycles
from service.test_clocks import advance_test_clock, create_test_clock
from tests.service.helpers import open_account

SPRING = datetime(2027, 3, 10, 12, 0, tzinfo=timezone.utc)


def test_a_batch_runs_each_command_at_its_own_accounts_time(service):
    create_test_clock(service, SPRING, "clock_b")
    open_account(service, "sandbox", test_clock_id="clock_b")
    open_account(service, "real")
    with service.commands.batch(AppendExtras(), accounts=["sandbox", "real"]) as batch:
        for account_id in ("sandbox", "real"):
            batch.handle(RecordUsage(account_id, idempotency_key="k", amount="1", line=UsageLine("sms")))
    service.projector.catch_up()
    occurred = {a: service.view.transactions(TransactionFilter(a), 5).rows[0].occurred_at for a in ("sandbox", "real")}
    assert occurred == {"sandbox": SPRING, "real": service.clock()}


def test_the_schedulers_sweeps_leave_attached_accounts_to_their_clock(service, clock):
    create_test_clock(service, SPRING, "clock_s")
    open_account(service, "sandbox", billing_mode="postpaid", credit_limit="50", drafts_need_approval=False,
                 test_clock_id="clock_s")
    service.handle(RecordUsage("sandbox", idempotency_key="k", amount="3", line=UsageLine("sms")))
    service.handle(Reserve("sandbox", reservation_id="h", amount="1", expires_at=datetime(2027, 3, 11, tzinfo=timezone.utc)))
    clock.now = datetime(2028, 1, 1, tzinfo=timezone.utc)  # real time far past the clock's cycle and hold
    assert close_due_cycles(service, clock.now) == {}
    assert service.expire_due_reservations() == {}
    assert [h.reservation_id for h in service.view.holds("sandbox")] == ["h"]

    done = advance_test_clock(service, "clock_s", datetime(2027, 4, 1, 0, 0, 1, tzinfo=timezone.utc))
    assert done.expired == {"sandbox": ["h"]} and len(done.invoices["sandbox"]) == 1
    events = [e.type for e in service.view.events(EventFilter("sandbox"), 100)]
    # the hold expired on March 11, before the cycle closed on April 1
    assert events.index("ReservationReleased") < events.index("CycleClosed")
