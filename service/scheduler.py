"""The ledger's chores on their schedules, in one loop, for a deployment without a cron:
release expired holds, close the billing cycles that ended, renew subscriptions, send queued
reminders and receipts.

Each chore is safe to run at any time and from several places at once (closing a cycle
twice closes nothing twice; an expired hold is released once; a reminder is claimed before
it is sent), so a second scheduler, or a CronJob beside it, does no harm. A chore that fails
is logged and tried again at its next turn; the others go on."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from persistence.appending import caused_by
from service.invoicing import close_due_cycles
from service.ledger_service import LedgerService
from service.reminder_sender import SenderSettings, send_batch, send_receipts
from service.settings import int_setting
from service.subscriptions import renew_due_subscriptions

log = logging.getLogger(__name__)
MAX_INTERVAL_S = 7 * 24 * 3600


@dataclass(frozen=True)
class Schedule:
    """Seconds between runs of each chore; 0 turns it off."""

    expire_reservations_s: int = 60
    close_cycles_s: int = 900
    send_reminders_s: int = 300
    renew_subscriptions_s: int = 900
    send_receipts_s: int = 60

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Schedule:
        return cls(
            expire_reservations_s=int_setting(env, "LEDGER_SCHEDULE_EXPIRE_RESERVATIONS_S", 60, 0, MAX_INTERVAL_S),
            close_cycles_s=int_setting(env, "LEDGER_SCHEDULE_CLOSE_CYCLES_S", 900, 0, MAX_INTERVAL_S),
            send_reminders_s=int_setting(env, "LEDGER_SCHEDULE_SEND_REMINDERS_S", 300, 0, MAX_INTERVAL_S),
            renew_subscriptions_s=int_setting(env, "LEDGER_SCHEDULE_RENEW_SUBSCRIPTIONS_S", 900, 0, MAX_INTERVAL_S),
            send_receipts_s=int_setting(env, "LEDGER_SCHEDULE_SEND_RECEIPTS_S", 60, 0, MAX_INTERVAL_S),
        )


@dataclass
class Chore:
    name: str
    interval_s: int
    run: Callable[[], Any]
    next_at: float = 0.0  # monotonic time of the next run; 0: at once
    runs: int = 0
    failures: int = 0
    last_result: Any = field(default=None, repr=False)


def chores(service: LedgerService, schedule: Schedule, sender: SenderSettings | None) -> list[Chore]:
    found = [
        Chore("expire-reservations", schedule.expire_reservations_s, service.expire_due_reservations),
        Chore("close-cycles", schedule.close_cycles_s, lambda: close_due_cycles(service, service.clock())),
        # after close-cycles: a renewal's charge belongs to the cycle its new period starts in
        Chore("renew-subscriptions", schedule.renew_subscriptions_s,
              lambda: renew_due_subscriptions(service, service.clock())),
    ]
    if sender is not None:
        found.append(Chore("send-reminders", schedule.send_reminders_s, lambda: send_batch(service, sender)))
        found.append(Chore("send-receipts", schedule.send_receipts_s, lambda: send_receipts(service, sender)))
    return [chore for chore in found if chore.interval_s > 0]


def run_due(due: list[Chore], now: float) -> None:
    for chore in due:
        try:
            with caused_by(kind="command", command=f"scheduler {chore.name}"):
                chore.last_result = chore.run()
            chore.runs += 1
            log.info("chore done", extra={"chore": chore.name, "result": str(chore.last_result)[:500]})
        except Exception:  # noqa: BLE001 - one failing chore must not stop the others
            chore.failures += 1
            log.exception("chore failed; it runs again at its next turn", extra={"chore": chore.name})
        chore.next_at = now + chore.interval_s


def run_scheduler(all_chores: list[Chore], stop: threading.Event, *, max_rounds: int | None = None) -> None:
    """Runs each chore when it is due until ``stop`` (or ``max_rounds`` rounds, for tests)."""
    rounds = 0
    while not stop.is_set() and (max_rounds is None or rounds < max_rounds):
        now = time.monotonic()
        run_due([c for c in all_chores if c.next_at <= now], now)
        rounds += 1
        if max_rounds is not None and rounds >= max_rounds:
            return
        if all_chores:
            stop.wait(max(0.0, min(c.next_at for c in all_chores) - time.monotonic()))
        else:
            stop.wait(60)
