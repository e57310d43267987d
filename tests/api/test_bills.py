"""Bills per account, product and cycle: sums, overdraft, and when they are settled."""

from __future__ import annotations

import io
from datetime import datetime, timezone

import pytest
from pypdf import PdfReader

from ledger_core.commands import RecordUsage
from ledger_core.usage import UsageLine


def post_usage(client, account_id, key, amount, occurred_at, product="sms", app="app-1", app_key="AK1", quantity="1",
               unit="message"):
    response = client.post(f"/v1/accounts/{account_id}/usage", json={
        "idempotency_key": key, "product": product, "application_id": app, "app_key": app_key,
        "quantity": quantity, "unit": unit, "amount": amount, "occurred_at": occurred_at})
    assert response.status_code == 201, response.get_json()


@pytest.fixture
def now(clock):
    clock.now = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
    return clock


def open_account(client, account_id, billing_mode, **extra):
    response = client.post("/v1/accounts", json={"account_id": account_id, "billing_mode": billing_mode,
                                                 "invoice_mode": "consolidated", "currency": "SGD", **extra})
    assert response.status_code == 201, response.get_json()


def test_prepaid_bill_sums_a_cycle_shows_overdraft_and_clears_when_funds_cover_it(client, now):
    open_account(client, "pre", "prepaid", credit_limit="50")
    client.post("/v1/accounts/pre/recharges", json={"amount": "10"})
    post_usage(client, "pre", "u1", "6", "2026-11-02T00:00:00Z", quantity="600")
    post_usage(client, "pre", "u2", "7.5", "2026-11-03T00:00:00Z", app_key="AK2", quantity="750")  # 3.5 beyond funds
    post_usage(client, "pre", "u3", "1", "2026-11-04T00:00:00Z", product="voice", quantity="2", unit="minute")
    post_usage(client, "pre", "u4", "2", "2026-12-04T00:00:00Z", quantity="200")  # next cycle
    page = client.get("/v1/bills?account_id=pre&sort=oldest").get_json()["items"]
    assert [(b["product"], b["cycle_start"], b["amount"], b["overdraft"], b["status"]) for b in page] == [
        ("sms", "2026-11-01T00:00:00.000000Z", "13.50", "3.50", "Pending"),
        ("voice", "2026-11-01T00:00:00.000000Z", "1.00", "1.00", "Pending"),
        ("sms", "2026-12-01T00:00:00.000000Z", "2.00", "2.00", "Pending"),
    ]
    sms = client.get(f"/v1/bills/{page[0]['bill_no']}").get_json()
    assert (sms["quantity"], sms["unit"]) == ("1350", "message")
    assert [(x["app_key"], x["quantity"], x["amount"]) for x in sms["lines"]] == [("AK1", "600", "6.00"),
                                                                                ("AK2", "750", "7.50")]
    client.post("/v1/accounts/pre/recharges", json={"amount": "5"})  # 6.50 of overdraft left
    assert {b["status"] for b in client.get("/v1/bills?account_id=pre").get_json()["items"]} == {"Pending"}
    client.post("/v1/accounts/pre/recharges", json={"amount": "6.5"})  # funds cover everything again
    cleared = client.get("/v1/bills?account_id=pre&status=Cleared").get_json()["items"]
    assert len(cleared) == 3
    assert client.get("/v1/bills?account_id=pre&status=Pending").get_json()["items"] == []


def test_postpaid_bill_clears_when_its_invoice_is_paid_and_late_usage_reopens_it(client, now, clock):
    open_account(client, "post", "postpaid", credit_limit="100")
    post_usage(client, "post", "u1", "4", "2026-11-05T00:00:00Z")
    [bill] = client.get("/v1/bills?account_id=post").get_json()["items"]
    clock.now = datetime(2026, 12, 1, tzinfo=timezone.utc)  # the cycle has ended
    closed = client.post("/v1/accounts/post/cycles/close", json={"as_of": "2026-12-01T00:00:00Z"}).get_json()
    [invoice_id] = closed["invoice_ids"]
    assert client.get(f"/v1/bills/{bill['bill_no']}").get_json()["invoice_id"] == invoice_id
    client.post(f"/v1/invoices/{invoice_id}/approve")
    client.post("/v1/accounts/post/payments", json={"payment_id": "p1", "amount": "3"})
    assert client.get(f"/v1/bills/{bill['bill_no']}").get_json()["status"] == "Pending"
    client.post("/v1/accounts/post/payments", json={"payment_id": "p2", "amount": "1"})
    assert client.get(f"/v1/bills/{bill['bill_no']}").get_json()["status"] == "Cleared"

    post_usage(client, "post", "late", "1", "2026-11-30T12:00:00Z")  # November usage after November's close
    late = client.get(f"/v1/bills/{bill['bill_no']}").get_json()
    assert (late["amount"], late["status"], late["invoice_id"]) == ("5.00", "Pending", None)


def test_bill_filters_paging_and_errors(client, now):
    open_account(client, "pre", "prepaid")
    for n in range(5):
        post_usage(client, "pre", f"u{n}", "1", f"2026-{n + 6:02d}-10T00:00:00Z")
    first = client.get("/v1/bills?account_id=pre&limit=2").get_json()
    second = client.get(f"/v1/bills?account_id=pre&limit=2&cursor={first['next_cursor']}").get_json()
    third = client.get(f"/v1/bills?account_id=pre&limit=2&cursor={second['next_cursor']}").get_json()
    months = [b["cycle_start"][:7] for page in (first, second, third) for b in page["items"]]
    assert months == ["2026-10", "2026-09", "2026-08", "2026-07", "2026-06"] and third["next_cursor"] is None
    ranged = client.get("/v1/bills?cycle_from=2026-07-01T00:00:00Z&cycle_to=2026-09-01T00:00:00Z").get_json()
    assert [b["cycle_start"][:7] for b in ranged["items"]] == ["2026-08", "2026-07"]
    assert client.get("/v1/bills?status=Late").status_code == 400
    missing = client.get("/v1/bills/B000000-NOPE")
    assert (missing.status_code, missing.get_json()["error"]["code"]) == (404, "bill_not_found")


def test_a_batch_reads_its_bills_in_one_query_not_one_each(service, client, now, monkeypatch):
    for n in range(3):
        open_account(client, f"acct-{n}", "prepaid")
        post_usage(client, f"acct-{n}", "first", "1", "2026-11-02T00:00:00Z")
    for n in range(3):  # written without catching up: one batch applies them all
        service.commands.handle(RecordUsage(f"acct-{n}", idempotency_key="second", amount="2",
                                            occurred_at=datetime(2026, 11, 3,
                                                                 tzinfo=timezone.utc), line=UsageLine(product="sms")))
        for key in ("new", "new-again"):  # a new bill, added to twice in the batch
            service.commands.handle(RecordUsage(f"acct-{n}", idempotency_key=key, amount="3",
                                                occurred_at=datetime(2026, 11, 3,
                                                                     tzinfo=timezone.utc), line=UsageLine(product="voice")))
    service.view.kept.take(0)  # empties it: the sms bills the posts above wrote are read too, not kept
    one_by_one, bulk = [], []
    monkeypatch.setattr(service.view, "bill", lambda number: one_by_one.append(number))
    read_many = service.view._bills_by_number
    monkeypatch.setattr(service.view, "_bills_by_number", lambda numbers: bulk.append(numbers) or read_many(numbers))
    service.projector.catch_up()
    assert one_by_one == [] and len(bulk) == 1 and len(bulk[0]) == 6  # 3 existing sms bills, 3 new voice ones
    sms = [b for b in client.get("/v1/bills?product=sms").get_json()["items"]]
    assert sorted(b["amount"] for b in sms) == ["3.00", "3.00", "3.00"]
    assert [b["amount"] for b in client.get("/v1/bills?product=voice").get_json()["items"]] == ["6.00"] * 3


def test_a_payer_name_of_blanks_is_no_name_on_documents(client, now):
    """Blanks pass as a name (a line of text) but print as nothing: the documents name the
    account instead, as for no name at all, rather than failing the request with a 500."""
    open_account(client, "blank", "postpaid", credit_limit="100", payer={"name": "   ", "organization": " "})
    post_usage(client, "blank", "u1", "4", "2026-11-05T00:00:00Z")
    [bill] = client.get("/v1/bills?account_id=blank").get_json()["items"]
    pdf = client.get(f"/v1/bills/{bill['bill_no']}.pdf")
    assert pdf.status_code == 200, pdf.get_json()
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages)
    assert "blank" in text
