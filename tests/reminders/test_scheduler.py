"""`ledger scheduler`: the chores run on their schedules in one loop, against a real ledger
and a real SMTP server; a failing chore does not stop the others."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

from ledger_core.commands import CloseCycles, RecordUsage, Reserve
from ledger_core.usage import UsageLine
from service.reminders import ReminderFilter, queue_reminders
from service.scheduler import Chore, Schedule, chores, run_scheduler
from tests.service.helpers import open_account


def test_one_round_expires_holds_closes_ended_cycles_and_sends_reminders(service, clock, smtp, sender_settings,
                                                                        invoices):
    queued = queue_reminders(service, ReminderFilter(), "run-1")
    assert queued.queued >= 1
    open_account(service, "holder", credit_limit="10")
    service.handle(Reserve("holder", reservation_id="h", amount="1", expires_at=clock.now + timedelta(minutes=5)))
    post = open_account(service, "monthly", billing_mode="postpaid", credit_limit="100")
    service.handle(RecordUsage(post, idempotency_key="u", amount="2", line=UsageLine(product="sms")))
    clock.now = datetime(2027, 1, 1, 0, 10, tzinfo=timezone.utc)  # the hold expired, December ended
    planned = chores(service, Schedule(), sender_settings)
    assert [c.name for c in planned] == ["expire-reservations", "close-cycles", "renew-subscriptions",
                                         "send-reminders", "send-receipts"]
    run_scheduler(planned, threading.Event(), max_rounds=1)
    assert [(c.runs, c.failures) for c in planned] == [(1, 0), (1, 0), (1, 0), (1, 0), (1, 0)]
    assert service.view.holds("holder") == []
    assert service.handle(CloseCycles(post)) == []  # closed by the scheduler already
    reminders = [m for m in smtp.received if m.message["X-Ledger-Reminder-Id"]]
    assert len(reminders) == queued.queued
    receipts = [m for m in smtp.received if m.message["X-Ledger-Receipt"]]
    assert len(receipts) == len(smtp.received) - len(reminders) > 0  # the scenario's payments' receipts


def test_a_failing_chore_is_retried_at_its_turn_and_the_others_go_on(service):
    def broken():
        raise RuntimeError("SMTP down")

    done = []
    failing = Chore("send-reminders", 1, broken)
    fine = Chore("expire-reservations", 1, lambda: done.append(1))
    run_scheduler([failing, fine], threading.Event(), max_rounds=3)
    assert failing.failures >= 2 and failing.runs == 0
    assert len(done) >= 2
    assert Schedule.from_env({"LEDGER_SCHEDULE_CLOSE_CYCLES_S": "0"}).close_cycles_s == 0
    assert [c.name for c in chores(service, Schedule(close_cycles_s=0), None)] == ["expire-reservations",
                                                                                   "renew-subscriptions"]
    assert [c.name for c in chores(service, Schedule(renew_subscriptions_s=0), None)] == ["expire-reservations",
                                                                                          "close-cycles"]
