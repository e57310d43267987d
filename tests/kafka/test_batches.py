"""Batches of messages decided on accounts kept in memory from batch to batch (no broker
needed: the Ingestor is handed the messages). Another writer changing such an account
in between must never be lost nor answered from the stale copy."""

from __future__ import annotations

import json
import threading
from decimal import Decimal

from consumer.ingest import Incoming, Ingestor, Outcome, Topics
from consumer.store import ConsumerStore
from ledger_core.commands import Recharge
from projections.rows import TransactionFilter
from service.ledger_service import LedgerService
from service.rebuild import rebuild, verify
from service.settings import Settings
from tests.conftest import FakeClock
from tests.service.helpers import last_position, open_account


class Feed:
    def __init__(self, service) -> None:
        self.ingestor = Ingestor(service, ConsumerStore(service.commands), Topics("usage"), "g")
        self.offset = 0

    def batch(self, *bodies: dict) -> list[Outcome]:
        messages = []
        for body in bodies:
            value = json.dumps({"schema_version": 1, **body}).encode()
            messages.append(Incoming("usage", 0, self.offset, body["account_id"].encode(), value))
            self.offset += 1
        return self.ingestor.handle_batch(messages)


def usage(event_id: str, amount: str) -> dict:
    return {"event_id": event_id, "type": "usage", "account_id": "acme", "product": "sms", "amount": amount}


def reserve(event_id: str, reservation_id: str, amount: str) -> dict:
    return {"event_id": event_id, "type": "reserve", "account_id": "acme", "reservation_id": reservation_id,
            "amount": amount}


def test_an_account_changed_by_another_writer_between_batches_loses_nothing(service):
    open_account(service, billing_mode="postpaid", credit_limit="100")
    feed = Feed(service)
    assert feed.batch(usage("u1", "1")) == [Outcome.APPLIED]
    assert len(feed.ingestor.warm) == 1  # kept for the next batch
    service.handle(Recharge("acme", amount="5", reference="elsewhere"))  # e.g. the HTTP API
    assert feed.batch(usage("u2", "2")) == [Outcome.APPLIED]  # the warm copy was stale: tried again on a fresh load
    assert feed.ingestor.batches_retried == 1
    assert feed.batch(usage("u3", "4")) == [Outcome.APPLIED]
    figures = service.account_row("acme").figures
    assert (figures.expecting_invoice, figures.amount_due) == (Decimal(-7), Decimal(5))
    assert service.commands.account("acme").version == 5  # opened, u1, recharge, u2, u3
    assert feed.ingestor.batches_retried == 1  # the copy kept after the retry was current


def test_a_refusal_is_never_decided_on_a_stale_warm_account(service):
    open_account(service)  # prepaid, no money: a reserve is refused
    feed = Feed(service)
    assert feed.batch(reserve("r1", "call-1", "5")) == [Outcome.REJECTED]
    service.handle(Recharge("acme", amount="10", reference="top-up"))  # e.g. the HTTP API
    assert feed.batch(reserve("r2", "call-2", "5")) == [Outcome.APPLIED]  # refused on the warm copy, not on the store
    figures = service.account_row("acme").figures
    assert (figures.reserved, figures.usable_credits) == (Decimal(5), Decimal(5))


def test_warm_accounts_are_bounded(service):
    for n in range(3):
        open_account(service, f"a{n}", billing_mode="postpaid", credit_limit="100")
    feed = Feed(service)
    feed.ingestor.warm.max_accounts = 2
    outcomes = feed.batch(*[{**usage(f"u{n}", "1"), "account_id": f"a{n}"} for n in range(3)])
    assert outcomes == [Outcome.APPLIED] * 3
    assert len(feed.ingestor.warm) == 2


def test_a_batch_that_loses_a_race_keeps_no_account_warm_and_books_every_message_once(database, clock):
    rival = LedgerService(Settings(database=database), clock=clock)
    open_account(rival, billing_mode="postpaid", credit_limit="100")
    racing = RacingClock(rival)
    service = LedgerService(Settings(database=database), clock=racing)
    feed = Feed(service)
    try:
        racing.races = 1  # the rival writes while the batch decides: the batch's save collides
        assert feed.batch(usage("u1", "1"), usage("u2", "2")) == [Outcome.APPLIED] * 2  # then message by message
        assert len(feed.ingestor.warm) == 0  # nothing of the lost batch was kept
        assert feed.batch(usage("u3", "4")) == [Outcome.APPLIED]
        figures = service.account_row("acme").figures
        assert (figures.expecting_invoice, figures.amount_due) == (Decimal(-7), Decimal(1))
        assert service.commands.account("acme").version == 5  # opened, rival's recharge, u1, u2, u3
    finally:
        service.close(), rival.close()


class RacingClock(FakeClock):
    """Lets a rival writer recharge the account while a command is deciding, ``races`` times."""

    def __init__(self, rival: LedgerService) -> None:
        super().__init__()
        self.rival, self.races = rival, 0

    def __call__(self):
        if self.races > 0:
            self.races -= 1
            # from a thread of its own, as another process would: outside this thread's batch
            writer = threading.Thread(target=self.rival.run,
                                      args=(lambda l: l.handle(Recharge("acme", amount="1", reference="rival")),))
            writer.start()
            writer.join()
        return super().__call__()


def test_read_models_of_batches_applied_from_memory_equal_a_replay_of_the_log(service, monkeypatch):
    for n in range(3):
        open_account(service, f"a{n}", billing_mode="postpaid", credit_limit="100")
    feed = Feed(service)
    before, reads = service.projector.position, []
    recorder = service.commands.recorder
    read_log = recorder.select_notifications
    monkeypatch.setattr(recorder, "select_notifications", lambda *a, **k: reads.append(a or k) or read_log(*a, **k))
    for b in range(3):
        bodies = [{**usage(f"u{b}-{n}", f"0.00000{n + 1}"), "account_id": f"a{n % 3}"} for n in range(5)]
        bodies.append(reserve(f"r{b}", f"hold-{b}", "1") | {"account_id": "a0"})
        assert feed.batch(*bodies) == [Outcome.APPLIED] * 6
    assert service.projector.position == last_position(service) > before
    assert reads == []  # each batch's events went to the read models as written, not read back
    monkeypatch.undo()
    differences, replayed = verify(service)
    assert differences == []
    assert replayed.events == sum(1 for _ in service.commands.recorder.audit_trail())  # every stored event


def test_account_rows_kept_between_batches_are_dropped_when_a_rebuild_swaps_the_tables(service):
    open_account(service, billing_mode="postpaid", credit_limit="100")
    feed = Feed(service)
    assert feed.batch(usage("u1", "1")) == [Outcome.APPLIED]
    assert feed.batch(usage("u2", "1")) == [Outcome.APPLIED]  # on the row the first batch kept
    rebuild(service)  # fresh tables under the live names, same position
    with service.view.datastore.transaction(commit=True) as cursor:  # rebuilt rows may differ from kept ones
        cursor.execute(f"UPDATE {service.view.sql.accounts} SET payer = '{json.dumps({'name': 'Rebuilt'})}'")
    assert feed.batch(usage("u3", "1")) == [Outcome.APPLIED]
    row = service.account_row("acme")
    assert (row.payer, row.figures.expecting_invoice) == ({"name": "Rebuilt"}, Decimal(-3))


def test_power_events_of_one_cloud_phone_in_one_batch_are_each_applied_once(service):
    from ledger_core.commands import PayOrder, PlaceOrder

    open_account(service, "acme", billing_mode="postpaid", credit_limit="100")
    order = service.handle(PlaceOrder("acme", kind="cloud_phone", product="Phone", quantity="1", unit_price="0",
                                      resource_id="cp-1", running_price="0.5", running_unit="hour",
                                      order_id="ord_phone1")).transaction_no
    service.handle(PayOrder("acme", order, method="balance"))

    def power(event_id, state, at):
        return {"event_id": event_id, "type": "power", "account_id": "acme", "order_id": order, "state": state,
                "occurred_at": at}

    feed = Feed(service)
    outcomes = feed.batch(power("p1", "on", "2026-11-20T10:00:00Z"), power("p2", "off", "2026-11-20T12:30:00Z"),
                          power("p2", "off", "2026-11-20T12:30:00Z"), usage("u1", "1"))
    assert outcomes[:2] == [Outcome.APPLIED, Outcome.APPLIED] and outcomes[3] == Outcome.APPLIED
    fees = [r for r in service.view.transactions(TransactionFilter("acme"), 20).rows if r.application_id == "cp-1"]
    assert [(r.quantity, r.amount) for r in fees] == [(Decimal(3), Decimal("-1.50"))]  # 3 started hours, once
    assert service.view.order(order).running_fees == Decimal("1.50")
    bad = feed.batch(power("p3", "sideways", "2026-11-20T13:00:00Z"))
    assert bad == [Outcome.DEAD_LETTER]
