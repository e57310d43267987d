"""Rebuilding the read models from event 1 into empty tables gives the same figures."""

from __future__ import annotations

from projections.catchup import Projector
from service.ledger_service import make_view
from tests.service.helpers import open_account


def populate(service) -> None:
    for n, (billing, mode) in enumerate([("prepaid", "itemized"), ("postpaid", "consolidated"), ("prepaid", "none")]):
        account = open_account(service, f"acct-{n}", billing_mode=billing, invoice_mode=mode, credit_limit="100")
        service.run(lambda l: l.recharge(account, amount="50.5", reference="r"))
        for i in range(5):
            service.run(lambda l: l.record_usage(account, idempotency_key=f"u{i}", product="sms", quantity="7", unit_price="0.0000035"))
        service.run(lambda l: l.post_charge(account, idempotency_key="c", kind="subscription", description="Pro", amount="9.99"))
        service.run(lambda l: l.reserve(account, reservation_id="h1", amount="10"))
        service.run(lambda l: l.reserve(account, reservation_id="h2", amount="5"))
        service.run(lambda l: l.settle(account, "h1", amount="3.25", product="call"))
        service.run(lambda l: l.update_account(account, credit_limit="250", payer={"name": f"Payer {n}"}))


def test_rebuild_from_event_one_matches_the_live_read_model(service):
    populate(service)
    live = service.view.dump()
    fresh = make_view(service.commands, prefix="rebuild")
    assert fresh.dump() == {"accounts": [], "transactions": [], "holds": [], "events": []}
    position = Projector(service.commands, fresh, batch_events=4).catch_up()
    assert position == service.projector.position
    assert fresh.dump() == live
    assert len(live["accounts"]) == 3 and len(live["transactions"]) == 3 * 8 and len(live["holds"]) == 3
    assert len(live["events"]) == 3 * 13  # every account event: opened, recharge, 5 usage, charge, 2 holds, settle, 2 changes


def test_catching_up_twice_applies_nothing_twice(service):
    populate(service)
    before = service.view.dump()
    assert service.projector.catch_up() == service.projector.position
    assert service.view.dump() == before
