"""Receipts by e-mail (issue 12, item 6): every recharge and payment received queues one
receipt for the account's billing contacts, sent with its PDF through a real SMTP server
in the test process, exactly once, also when the sender dies midway."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from pypdf import PdfReader

from adapters.smtp import SmtpMailer
from ledger_core.commands import Recharge, RecordPayment
from service.reminder_sender import send_receipts
from tests.service.helpers import open_account


def attachment_text(message) -> str:
    [part] = [p for p in message.iter_attachments() if p.get_content_type() == "application/pdf"]
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(part.get_content())).pages)


def test_a_recharge_and_a_payment_each_send_one_receipt_with_its_pdf(service, smtp, sender_settings):
    open_account(service, "acme", payer={"name": "Acme", "emails": ["billing@acme.test", "boss@acme.test"]})
    open_account(service, "quiet")  # no billing contact: nothing to send
    recharge = service.handle(Recharge("acme", amount="65.98", reference="PAY-1", method="card"))
    service.handle(Recharge("quiet", amount="5"))
    payment = service.handle(RecordPayment("acme", payment_id="p-1", amount="10"))
    sent = send_receipts(service, sender_settings)
    assert (sent.claimed, sent.sent) == (2, 2)
    assert send_receipts(service, sender_settings).claimed == 0  # each once
    by_receipt = {m.message["X-Ledger-Receipt"]: m for m in smtp.received}
    assert set(by_receipt) == {recharge.transaction_no, payment.transaction_no}
    mail = by_receipt[recharge.transaction_no]
    assert mail.recipients == ["billing@acme.test", "boss@acme.test"]
    assert mail.message["Subject"] == f"Receipt {recharge.transaction_no}: 65.98 SGD received"
    text = attachment_text(mail.message)
    assert "65.98" in text and "PAY-1" in text and recharge.transaction_no in text
    assert service.receipt_outbox.of_receipt(recharge.transaction_no).status == "sent"


def test_a_sender_that_dies_midway_leaves_each_receipt_sent_exactly_once(service, clock, smtp, sender_settings,
                                                                        monkeypatch):
    open_account(service, "acme", payer={"emails": ["billing@acme.test"]})
    numbers = [service.handle(Recharge("acme", amount=str(n))).transaction_no for n in (1, 2, 3)]
    real_send = SmtpMailer.send
    calls = []

    def dies_after_the_first(self, message):
        if calls:
            raise KeyboardInterrupt("the sender process is killed")
        calls.append(1)
        real_send(self, message)

    monkeypatch.setattr(SmtpMailer, "send", dies_after_the_first)
    with pytest.raises(KeyboardInterrupt):
        send_receipts(service, sender_settings)  # claimed all three, sent and marked one
    monkeypatch.setattr(SmtpMailer, "send", real_send)
    assert send_receipts(service, sender_settings).claimed == 0  # the dead sender's lease holds the others
    clock.now += timedelta(seconds=sender_settings.lease_s + 1)
    assert send_receipts(service, sender_settings).sent == 2  # restarted after the lease: the rest
    received = sorted(m.message["X-Ledger-Receipt"] for m in smtp.received)
    assert received == sorted(numbers)  # one each
    assert {m.message["Message-ID"] for m in smtp.received} == {
        f"<receipt.{n.replace(':', '.')}@ledger.test>" for n in numbers}
    assert sum(Decimal(str(m.message["Subject"]).split(": ")[1].split()[0]) for m in smtp.received) == 6


def test_ledger_send_receipts_delivers_them(service, smtp, sender_settings, run_cli, monkeypatch):
    open_account(service, "acme", payer={"emails": ["billing@acme.test"]})
    service.handle(Recharge("acme", amount="7"))
    monkeypatch.setenv("LEDGER_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("LEDGER_SMTP_PORT", str(smtp.port))
    result = run_cli("send-receipts", "--once")
    assert result.exit_code == 0, result.output
    assert '"sent": 1' in result.stdout and len(smtp.received) == 1


def test_a_paid_order_sends_its_own_receipt_to_the_buyer_and_the_billing_contacts(service, smtp, sender_settings):
    from ledger_core.commands import PayOrder, PlaceOrder

    open_account(service, "acme", payer={"emails": ["billing@acme.test"]})
    service.handle(Recharge("acme", amount="100"))
    for n, method in enumerate(("balance", "external")):
        order = service.handle(PlaceOrder("acme", kind="agent", product="Residential proxy", quantity="2",
                                          unit_price="7.5", order_id=f"ord_p{n}")).transaction_no
        service.handle(PayOrder("acme", order, method=method, reference="ch_9" if n else "",
                                paid_by="buyer@acme.test"))
    send_receipts(service, sender_settings)
    by_receipt = {m.message["X-Ledger-Receipt"]: m for m in smtp.received}
    # the first recharge, and one per order: the external payment's recharge gets none of its own
    assert sorted(by_receipt) == sorted([*(k for k in by_receipt if not k.startswith("ord_")), "ord_p0", "ord_p1"])
    assert len(by_receipt) == 3
    order_mail = by_receipt["ord_p1"]
    assert order_mail.recipients == ["buyer@acme.test", "billing@acme.test"]
    text = attachment_text(order_mail.message)
    assert "15.00" in text and "Residential proxy x 2" in text and "ch_9" in text


def test_a_recharge_bought_by_a_person_sends_its_receipt_to_them_too(service, smtp, sender_settings, app):
    from ledger_core.commands import IssueKey
    from tests.conftest import client_with_key

    open_account(service, "acme", payer={"emails": ["billing@acme.test"]})
    client = client_with_key(app, service.handle(IssueKey("finance")).secret)
    made = client.post("/v1/accounts/acme/recharges", json={"amount": "12", "purchaser_email": "ann@acme.test"})
    assert made.status_code == 201, made.get_json()
    assert client.post("/v1/accounts/acme/recharges", json={"amount": "1", "purchaser_email": "nope"}).status_code == 400
    send_receipts(service, sender_settings)
    [mail] = smtp.received
    assert mail.recipients == ["ann@acme.test", "billing@acme.test"]
