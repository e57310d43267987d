"""Invoices made through the real commands, one of each kind a reminder run must tell apart.

Every account opens on 2026-11-26 (the test clock), records usage in November, and its
cycle closes on 2026-12-02: issued that day, due 14 days later, on 2026-12-16.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

from ledger_core.commands import ApproveInvoice, CloseCycles, OpenAccount, RecordPayment, RecordUsage
from ledger_core.usage import UsageLine
from service.ledger_service import LedgerService

CLOSED_AT = datetime(2026, 12, 2, 9, 0, tzinfo=timezone.utc)
DUE_ON = "2026-12-16"


@dataclass(frozen=True)
class Invoices:
    partly_paid: str  # acme: 66.50, 20.00 paid
    unpaid: str  # gamma: 12.345678, nothing paid
    paid: str  # beta: 10.00, paid in full
    draft: str  # delta: never approved
    no_email: str  # nomail: unpaid, but its payer has no email address

    def number(self, service: LedgerService, invoice_id: str) -> str:
        row = service.view.invoice(invoice_id)
        assert row is not None and row.number is not None
        return row.number


ACCOUNTS = {
    "acme": ({"name": "Ada Tan", "organization": "Acme Pte Ltd", "emails": ["billing@acme.test", "cfo@acme.test"]},
             Decimal("66.50")),
    "beta": ({"name": "Beta Ltd", "emails": ["ap@beta.test"]}, Decimal("10.00")),
    "gamma": ({"organization": "Gamma LLP", "emails": ["pay@gamma.test"]}, Decimal("12.345678")),
    "delta": ({"name": "Delta", "emails": ["d@delta.test"]}, Decimal("5")),
    "nomail": ({"name": "No Mail Co"}, Decimal("7")),
}


def make_invoices(service: LedgerService, clock) -> Invoices:
    for account_id, (payer, usage) in ACCOUNTS.items():
        service.handle(OpenAccount(account_id, currency="SGD", billing_mode="postpaid", invoice_mode="consolidated",
                                   payer=payer, time_zone="Asia/Singapore"))
        service.handle(RecordUsage(account_id, idempotency_key=f"{account_id}-usage", amount=usage,
                                   line=UsageLine(product="sms")))
    clock.now = CLOSED_AT
    made = {a: service.run(lambda ledger, a=a: ledger.handle(CloseCycles(a, as_of=CLOSED_AT))) for a in ACCOUNTS}
    assert all(len(ids) == 1 for ids in made.values()), made
    ids = {a: ids[0] for a, ids in made.items()}
    for account_id in ("acme", "beta", "gamma", "nomail"):
        service.run(lambda ledger, i=ids[account_id]: [ledger.handle(ApproveInvoice(i))])
    service.handle(RecordPayment("acme", payment_id="acme-p1", amount="20.00"))
    service.handle(RecordPayment("beta", payment_id="beta-p1", amount="10.00"))
    return Invoices(partly_paid=ids["acme"], unpaid=ids["gamma"], paid=ids["beta"], draft=ids["delta"],
                    no_email=ids["nomail"])
