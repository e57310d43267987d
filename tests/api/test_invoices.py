"""Invoicing over HTTP, on SQLite and PostgreSQL: a postpaid month from usage to payment."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest


@pytest.fixture
def postpaid(client, clock):
    clock.now = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
    response = client.post("/v1/accounts", json={
        "account_id": "bigco", "billing_mode": "postpaid", "invoice_mode": "consolidated", "currency": "SGD",
        "credit_limit": "1000", "tax_rate": "0.09", "payment_terms_days": 10,
        "payer": {"name": "BigCo", "emails": ["ap@bigco.test"]},
    })
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["drafts_need_approval"] is True
    usage = {"idempotency_key": "u1", "product": "sms", "application_id": "app-1", "app_key": "AK1",
             "quantity": "1000", "unit": "message", "unit_price": "0.0123"}
    assert client.post("/v1/accounts/bigco/usage", json=usage).status_code == 201
    return "bigco"


def test_close_approve_pay_and_list(client, clock, postpaid):
    prediction = client.get("/v1/accounts/bigco/invoices/prediction").get_json()
    # 12.30 so far after 19 days and 9 hours of a 30-day cycle: 12.30 x 720 / 465 = 19.045161
    assert (prediction["amount_so_far"], prediction["estimated_subtotal"]) == ("12.30", "19.045161")
    assert client.get("/v1/accounts/bigco/invoices/future").get_json()["cut_off_date"] == "2026-11-30"

    early = client.post("/v1/accounts/bigco/cycles/close", json={"as_of": "2026-12-01T00:00:00Z"})
    assert (early.status_code, early.get_json()["error"]["code"]) == (422, "close_in_future")  # it is Nov 26
    clock.now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    closed = client.post("/v1/accounts/bigco/cycles/close", json={"as_of": "2026-12-01T00:00:00Z"})
    assert closed.status_code == 200
    [invoice_id] = closed.get_json()["invoice_ids"]
    draft = client.get(f"/v1/invoices/{invoice_id}").get_json()
    assert (draft["status"], draft["subtotal"], draft["tax"], draft["total"]) == ("draft", "12.30", "1.11", "13.41")
    assert draft["lines"][0] | {"line_no": 1} == draft["lines"][0]
    assert (draft["lines"][0]["app_key"], draft["lines"][0]["quantity"]) == ("AK1", "1000")

    clock.now = datetime(2026, 12, 2, tzinfo=timezone.utc)
    approved = client.post(f"/v1/invoices/{invoice_id}/approve").get_json()
    assert (approved["number"], approved["due_on"], approved["payment_status"]) == ("INV-2026-000001", "2026-12-12", "unpaid")
    again = client.post(f"/v1/invoices/{invoice_id}/approve")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "invoice_not_draft"

    paid = client.post("/v1/accounts/bigco/payments", json={"payment_id": "p1", "amount": "5", "method": "bank"})
    assert paid.status_code == 201
    assert paid.get_json()["balance"]["amount_due"] == "-8.41"
    assert client.post("/v1/accounts/bigco/payments", json={"payment_id": "p1", "amount": "5", "method": "bank"}).status_code == 200

    clock.now = datetime(2026, 12, 20, tzinfo=timezone.utc)  # past the due date
    overdue = client.get("/v1/invoices?due_status=overdue").get_json()["items"]
    assert [(i["number"], i["payment_status"], i["outstanding"], i["due_status"]) for i in overdue] == [
        ("INV-2026-000001", "partially_paid", "8.41", "overdue")]
    assert client.get("/v1/invoices?due_status=not_due").get_json()["items"] == []
    assert client.get("/v1/invoices?number=INV-2026-000001").get_json()["items"][0]["invoice_id"] == invoice_id
    dashboard = client.get("/v1/invoices/dashboard").get_json()
    assert {k: dashboard[k] for k in ("total_invoices", "approved", "not_approved", "unsettled", "overdue")} == {
        "total_invoices": 1, "approved": 1, "not_approved": 0, "unsettled": 1, "overdue": 1}
    assert dashboard["groups"] == [{"currency": "SGD", "status": "approved", "payment_status": "partially_paid",
                                    "invoices": 1, "total": "13.41", "paid": "5.00", "outstanding": "8.41"}]
    payments = client.get("/v1/payments?account_id=bigco").get_json()["items"]
    assert payments[0]["allocations"] == [{"invoice_id": invoice_id, "amount": "5.00", "outstanding_after": "8.41"}]
    detail = client.get("/v1/invoices/INV-2026-000001").get_json()
    assert [p["payment_id"] for p in detail["payments"]] == ["p1"]


def test_manual_usage_invoice_create_and_claim(client, clock, postpaid):
    created = client.post("/v1/accounts/bigco/invoices", json={
        "type": "usage", "date_from": "2026-11-01", "date_to": "2026-11-30", "notes": "Early invoice",
        "claim": {"payment_id": "wire-7", "method": "wire", "reference": "W7"},
    })
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert (body["status"], body["payment_status"], body["total"], body["notes"]) == ("approved", "paid", "13.41", "Early invoice")
    assert client.get("/v1/accounts/bigco/balance").get_json()["amount_due"] == "0.00"
    clock.now = datetime(2027, 3, 1, tzinfo=timezone.utc)  # long past its due date, but paid
    assert client.get("/v1/invoices?due_status=overdue").get_json()["items"] == []
    assert [i["due_status"] for i in client.get("/v1/invoices?due_status=not_due").get_json()["items"]] == ["not_due"]


def test_create_and_claim_is_one_write_and_its_payment_id_makes_a_repeat_harmless(client, postpaid):
    request = {"type": "usage", "date_from": "2026-11-01", "date_to": "2026-11-30",
               "claim": {"payment_id": "wire-8", "method": "wire", "reference": "W8"}}
    first = client.post("/v1/accounts/bigco/invoices", json=request)
    again = client.post("/v1/accounts/bigco/invoices", json=request)  # e.g. the client's retry after a timeout
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["invoice_id"] == first.get_json()["invoice_id"]
    assert [i["invoice_id"] for i in client.get("/v1/invoices?account_id=bigco").get_json()["items"]] == [
        first.get_json()["invoice_id"]]
    assert [p["amount"] for p in client.get("/v1/payments?account_id=bigco").get_json()["items"]] == ["13.41"]

    # The same payment id for another request: refused, and no invoice is issued without its payment.
    usage = {"idempotency_key": "u2", "product": "sms", "amount": "5"}
    assert client.post("/v1/accounts/bigco/usage", json=usage).status_code == 201
    balance = client.get("/v1/accounts/bigco/balance").get_json()
    reused = client.post("/v1/accounts/bigco/invoices", json={**request, "notes": "another"})
    assert (reused.status_code, reused.get_json()["error"]["code"]) == (409, "idempotency_key_reused")
    assert len(client.get("/v1/invoices?account_id=bigco").get_json()["items"]) == 1
    assert client.get("/v1/accounts/bigco/balance").get_json() == balance


def test_an_idempotency_key_makes_a_repeated_manual_invoice_harmless(client, clock):
    clock.now = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
    assert client.post("/v1/accounts", json={"account_id": "pre", "billing_mode": "prepaid",
                                             "invoice_mode": "consolidated", "currency": "SGD"}).status_code == 201
    request = {"type": "topup", "amount": "100", "description": "Credits", "idempotency_key": "order-77"}
    first = client.post("/v1/accounts/pre/invoices", json=request)
    again = client.post("/v1/accounts/pre/invoices", json=request)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["invoice_id"] == first.get_json()["invoice_id"]
    assert len(client.get("/v1/invoices?account_id=pre").get_json()["items"]) == 1
    other = client.post("/v1/accounts/pre/invoices", json={**request, "amount": "200"})
    assert (other.status_code, other.get_json()["error"]["code"]) == (409, "idempotency_key_reused")
    both = client.post("/v1/accounts/pre/invoices", json={
        **request, "claim": {"payment_id": "p9", "method": "card", "reference": "C9"}})
    assert (both.status_code, both.get_json()["error"]["code"]) == (400, "invalid_input")
    assert len(client.get("/v1/invoices?account_id=pre").get_json()["items"]) == 1


def test_bad_invoicing_requests_are_4xx_with_codes(client, postpaid):
    cases = [
        (client.post("/v1/accounts/bigco/invoices", json={"type": "topup"}), 400, "invalid_input"),
        (client.post("/v1/accounts/bigco/payments", json={"payment_id": "x", "amount": "-1"}), 400, "invalid_input"),
        (client.post("/v1/accounts/bigco/payments", json={"payment_id": "y", "amount": "1", "invoice_id": "bigco:I000009"}), 404, "invoice_not_found"),
        (client.post("/v1/invoices/nobody:I000001/approve"), 404, "invoice_not_found"),
        (client.post("/v1/accounts/bigco/refunds", json={"amount": "1", "reference": "R"}), 422, "refund_exceeds_credit"),
        (client.get("/v1/invoices?due_status=late"), 400, "invalid_input"),
        (client.post("/v1/accounts/bigco/invoices", json={"type": "usage", "date_from": "2020-01-01", "date_to": "2020-01-31"}), 422, "nothing_to_invoice"),
        (client.patch("/v1/accounts/bigco", json={"time_zone": "Mars/Olympus"}), 400, "invalid_input"),
    ]
    for response, status, code in cases:
        assert (response.status_code, response.get_json()["error"]["code"]) == (status, code), response.get_json()


def test_an_invoice_paid_in_many_parts_still_prints(client, clock, postpaid):
    """Partial payments have no limit; an invoice's document lists the last ones and sums
    the earlier ones in one row, so the rows still add up to the amount paid."""
    import io

    from pypdf import PdfReader

    from exporters.documents import MAX_PAYMENTS

    clock.now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    [invoice_id] = client.post("/v1/accounts/bigco/cycles/close", json={"as_of": "2026-12-01T00:00:00Z"}).get_json()["invoice_ids"]
    client.post(f"/v1/invoices/{invoice_id}/approve")
    parts = MAX_PAYMENTS + 5
    for n in range(parts):
        paid = client.post("/v1/accounts/bigco/payments", json={"payment_id": f"p{n}", "amount": "0.10", "method": "bank"})
        assert paid.status_code == 201, paid.get_json()
    pdf = client.get(f"/v1/invoices/{invoice_id}.pdf")
    assert pdf.status_code == 200, pdf.get_json()
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages)
    assert f"p{parts - 1}" in text and "p0" not in text.split()
    assert client.get(f"/v1/invoices/{invoice_id}").get_json()["paid"] == str(Decimal("0.10") * parts)
    assert f"{parts - MAX_PAYMENTS + 1} earlier payments" in text


def test_a_payment_that_settles_many_invoices_still_prints_its_receipt(client, clock):
    import io

    from pypdf import PdfReader

    from exporters.documents import MAX_PAYMENTS

    clock.now = datetime(2026, 12, 20, tzinfo=timezone.utc)
    assert client.post("/v1/accounts", json={"account_id": "many", "billing_mode": "postpaid", "invoice_mode": "consolidated",
                                             "currency": "SGD", "credit_limit": "1000"}).status_code == 201
    invoices = MAX_PAYMENTS + 3
    for day in range(1, invoices + 1):  # one usage a day, one invoice a day
        used = client.post("/v1/accounts/many/usage", json={"idempotency_key": f"u{day}", "product": "sms", "amount": "1",
                                                           "occurred_at": f"2026-11-{day:02d}T10:00:00Z"})
        assert used.status_code == 201, used.get_json()
        made = client.post("/v1/accounts/many/invoices", json={"type": "usage", "date_from": f"2026-11-{day:02d}",
                                                              "date_to": f"2026-11-{day:02d}"})
        assert made.status_code == 201, made.get_json()
    paid = client.post("/v1/accounts/many/payments", json={"payment_id": "all", "amount": str(invoices), "method": "bank"})
    assert paid.status_code == 201, paid.get_json()
    [payment] = client.get("/v1/payments?account_id=many").get_json()["items"]
    assert len(payment["allocations"]) == invoices
    pdf = client.get(f"/v1/receipts/{paid.get_json()['transaction_no']}.pdf")
    assert pdf.status_code == 200, pdf.get_json()
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages)
    assert "INV-2026-000001, INV-2026-000002" in text  # the line is cut short at the page edge
