"""Stored events of every kind, and what they produced: the compatibility fixture.

    .venv/bin/python -m tests.compat.scenario   # writes tests/compat/fixture/ anew

Run once, with the code of the day the fixture is recorded (2026-12-04), never again for
the same fixture: tests/compat/test_stored_events.py loads these bytes with today's code
and must get the same figures, invoices and bills. A change to an event's class, module
or fields that old events cannot follow fails it.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from ledger_core.commands import (
    ApproveInvoice,
    InvoiceTopup,
    IssueKey,
    OpenAccount,
    PaymentReceived,
    PostCharge,
    Recharge,
    RecordPayment,
    RecordUsage,
    RefundOverpayment,
    Release,
    Reserve,
    RevokeKey,
    Settle,
    UpdateAccount,
    VoidInvoice,
)
from ledger_core.usage import UsageLine
from persistence.database import DatabaseConfig
from service.invoicing import close_due_cycles, issue_manual_invoice
from service.ledger_service import LedgerService
from service.settings import Settings

FIXTURE = Path(__file__).resolve().parent / "fixture"
EVENTS_TABLE = "stored_events"  # the SQLite name (PostgreSQL: ledger_events)
START = datetime(2026, 10, 5, 9, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def at(self, day: str) -> datetime:
        self.now = datetime.fromisoformat(day).replace(tzinfo=timezone.utc)
        return self.now


def play(service: LedgerService, clock: Clock) -> None:
    """Every event type: accounts of each mode, money in and out, holds settled, released
    and expired, every setting, invoices drafted, approved, voided and paid, refunds, low
    balance, keys."""
    run = service.run
    key = service.handle(IssueKey("finance", name="fixture", accounts=["pre"])).key
    service.handle(RevokeKey(key.key_id))
    run(lambda l: l.handle(OpenAccount(account_id="pre", billing_mode="prepaid", invoice_mode="consolidated",
                                       currency="SGD", tax_rate="0.09", low_balance_threshold="20",
                                       payer={"name": "Prepaid Pte", "emails": ["a@pre.test"],
                                              "address": "1 Road\nSG"})))
    run(lambda l: l.handle(OpenAccount(account_id="post", billing_mode="postpaid", invoice_mode="consolidated",
                                       currency="EUR", credit_limit="500", time_zone="Asia/Kolkata", cycle_anchor_day=5)))
    run(lambda l: l.handle(OpenAccount(account_id="item", billing_mode="prepaid", invoice_mode="itemized",
                                       currency="INR")))
    run(lambda l: l.handle(OpenAccount(account_id="none", billing_mode="prepaid", invoice_mode="none", currency="TRY")))
    run(lambda l: l.handle(Recharge("pre", amount="100", reference="PAY-1", method="card", idempotency_key="rk1")))
    run(lambda l: l.handle(RecordUsage("pre", idempotency_key="u1", unit_price="0.0333335", occurred_at=START,
                                       line=UsageLine(product="sms", quantity="3", unit="message",
                                                      application_id="app-1", application_name="Shop", app_key="AK1",
                                                      channel_account="WABA-1"))))
    run(lambda l: l.handle(RecordUsage("pre", idempotency_key="u2", amount="85.5",
                                       line=UsageLine(product="whatsapp"))))  # crosses 20
    run(lambda l: l.handle(PostCharge("pre", idempotency_key="c1", kind="subscription", description="Plan",
                                      amount="9.99")))
    run(lambda l: l.handle(Reserve("pre", reservation_id="h1", amount="2", expires_at=START + timedelta(days=30))))
    run(lambda l: l.handle(Settle("pre", "h1", amount="1.25", line=UsageLine(product="voice", quantity="2",
                                                                             unit="min"))))
    run(lambda l: l.handle(Reserve("pre", reservation_id="h2", amount="1")))
    run(lambda l: l.handle(Release("pre", "h2", reason="failed")))
    run(lambda l: l.handle(Reserve("pre", reservation_id="h3", amount="1", expires_at=START + timedelta(hours=1))))
    clock.now = START + timedelta(hours=2)
    service.expire_due_reservations(clock.now)
    run(lambda l: l.handle(UpdateAccount("pre", credit_limit="5", usage_policy="block", low_balance_threshold=None,
                                         payer={"tax_id": "T-9"}, tax_rate="0.07")))
    run(lambda l: l.handle(Recharge("item", amount="1000")))
    run(lambda l: l.handle(PostCharge("item", idempotency_key="c1", kind="hardware", description="Router",
                                      amount="250")))
    run(lambda l: l.handle(Recharge("none", amount="50")))
    run(lambda l: l.handle(RecordUsage("none", idempotency_key="u1", amount="2", line=UsageLine(product="sms"))))
    run(lambda l: l.handle(UpdateAccount("none", invoice_mode="consolidated")))
    for day, amount in (("2026-10-06", "120"), ("2026-10-20", "80.5")):
        clock.at(day + "T10:00:00")
        run(lambda l, a=amount, d=day: l.handle(RecordUsage("post", idempotency_key=f"u-{d}", amount=a,
                                                            line=UsageLine(product="sms"))))
    clock.at("2026-11-06T00:00:00")
    close_due_cycles(service, clock.now)
    for invoice_id in _invoice_ids(service, "post"):
        run(lambda l, i=invoice_id: l.handle(ApproveInvoice(i)))
    run(lambda l: l.handle(RecordUsage("post", idempotency_key="late", amount="4", line=UsageLine(product="sms"),
                                       occurred_at=datetime(2026, 10, 30, tzinfo=timezone.utc))))
    run(lambda l: l.handle(RecordPayment("post", payment_id="pay-1", amount="100", method="transfer",
                                         reference="TR-1")))
    clock.at("2026-12-06T00:00:00")
    close_due_cycles(service, clock.now)
    for invoice_id in _invoice_ids(service, "post", status="draft"):
        run(lambda l, i=invoice_id: l.handle(VoidInvoice(i)))
    run(lambda l: l.handle(UpdateAccount("post", cycle_running=False, payment_terms_days=30,
                                         drafts_need_approval=False)))
    run(lambda l: l.handle(RecordPayment("post", payment_id="pay-2", amount="200")))
    run(lambda l: l.handle(RefundOverpayment("post", amount="10", reference="RF-1", idempotency_key="rf1")))
    issue_manual_invoice(service, InvoiceTopup("pre", amount="50", description="Credits",
                                               paid=PaymentReceived("claim-1", "card", "C-1")))
    clock.at("2026-12-07T00:00:00")
    close_due_cycles(service, clock.now)


def _invoice_ids(service: LedgerService, account_id: str, status: str | None = None) -> list[str]:
    from projections.rows import InvoiceFilter

    rows, _ = service.view.invoices(InvoiceFilter(account_id=account_id, status=status), 500)
    return [r.invoice_id for r in rows]


def outcome(service: LedgerService) -> dict[str, Any]:
    """What the events produced, as text: figures per account, invoices, bills."""
    from projections.bills import BillFilter
    from projections.rows import InvoiceFilter

    accounts = {}
    for account_id in ("pre", "post", "item", "none"):
        row = service.account_row(account_id)
        f = row.figures
        accounts[account_id] = {
            "version": row.version, "expecting_invoice": f"{f.expecting_invoice:f}", "amount_due": f"{f.amount_due:f}",
            "current_balance": f"{f.current_balance:f}", "reserved": f"{f.reserved:f}",
            "usable_credits": f"{f.usable_credits:f}", "credit_limit": f"{f.credit_limit:f}",
            "invoice_mode": f.invoice_mode.value,
        }
    invoices, _ = service.view.invoices(InvoiceFilter(), 500)
    bills, _ = service.view.bills(BillFilter(), 500)
    return {
        "accounts": accounts,
        "invoices": sorted([r.invoice_id, r.number, r.status, f"{r.subtotal:f}", f"{r.tax:f}", f"{r.total:f}",
                            f"{r.paid:f}", f"{r.outstanding:f}", r.payment_status] for r in invoices),
        "bills": sorted([b.bill_no, b.account_id, b.product, f"{b.amount:f}", f"{b.overdraft:f}", b.status]
                        for b in bills),
    }


def stored_event(row: dict[str, Any]) -> StoredEvent:
    """A fixture line (events.jsonl, snapshots.jsonl) as the recorder stores it."""
    return StoredEvent(originator_id=UUID(row["originator_id"]), originator_version=row["originator_version"],
                       topic=row["topic"], state=base64.b64decode(row["state"]))


def load_fixture(service: LedgerService) -> int:
    """Inserts the fixture's stored events, as they are; returns how many."""
    lines = (FIXTURE / "events.jsonl").read_text().splitlines()
    service.commands.recorder.insert_events([stored_event(json.loads(line)) for line in lines])
    return len(lines)


def stored_events(database_path: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(database_path) as conn:
        rows = conn.execute(f"SELECT originator_id, originator_version, topic, state FROM {EVENTS_TABLE} "
                            "ORDER BY rowid").fetchall()  # rowid: the notification id
    return [{"originator_id": str(r[0]), "originator_version": r[1], "topic": r[2],
             "state": base64.b64encode(r[3]).decode("ascii")} for r in rows]


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="ledger-compat-"))
    clock = Clock()
    service = LedgerService(Settings(database=DatabaseConfig(f"sqlite:///{folder}/ledger.db")), clock=clock)
    try:
        play(service, clock)
        result = outcome(service)
    finally:
        service.close()
    FIXTURE.mkdir(exist_ok=True)
    events = stored_events(folder / "ledger.db")
    (FIXTURE / "events.jsonl").write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in events))
    (FIXTURE / "expected.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    topics = sorted({e["topic"] for e in events})
    print(f"{len(events)} events of {len(topics)} types written to {FIXTURE}")


if __name__ == "__main__":
    main()
