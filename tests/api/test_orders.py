"""Orders (issue 12, item 5): placed pending payment, paid from the balance or externally,
cancelled; listed with search and filters and exported; through HTTP on both databases."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from tests.api.test_finance_fixes import open_account
from tests.conftest import client_with_key


def place(client, account_id="acme", **body):
    order = {"kind": "cloud_phone", "product": "Cloud phone Android 12", "unit_price": "12.5", **body}
    answer = client.post(f"/v1/accounts/{account_id}/orders", json=order)
    assert answer.status_code in (200, 201), answer.get_json()
    return answer.get_json()


def balance(client, account_id="acme"):
    return client.get(f"/v1/accounts/{account_id}/balance").get_json()


def test_an_order_moves_money_only_when_paid_and_only_once(client):
    open_account(client, "acme", "SGD", payer={"emails": ["ap@acme.test"]})
    client.post("/v1/accounts/acme/recharges", json={"amount": "30"})
    made = place(client, quantity="2", ordered_by="ops@acme.test", resource_id="cp-7", idempotency_key="o1")
    order = made["order"]
    assert (order["status"], order["amount"], made["balance"]["current_balance"]) == ("pending_payment", "25.00",
                                                                                     "30.00")
    again = client.post("/v1/accounts/acme/orders", json={"kind": "cloud_phone", "product": "Cloud phone Android 12",
                                                           "unit_price": "12.5", "quantity": "2", "ordered_by":
                                                           "ops@acme.test", "resource_id": "cp-7",
                                                           "idempotency_key": "o1"})
    assert (again.status_code, again.get_json()["order"]["order_id"]) == (200, order["order_id"])
    paid = client.post(f"/v1/accounts/acme/orders/{order['order_id']}/pay", json={"method": "balance",
                                                                                   "paid_by": "ops@acme.test"})
    assert paid.status_code == 200, paid.get_json()
    assert (paid.get_json()["order"]["status"], paid.get_json()["balance"]["current_balance"]) == ("completed", "5.00")
    twice = client.post(f"/v1/accounts/acme/orders/{order['order_id']}/pay", json={"method": "balance"})
    assert (twice.status_code, twice.get_json()["error"]["code"]) == (409, "order_not_pending")
    assert balance(client)["current_balance"] == "5.00"
    rows = client.get("/v1/accounts/acme/transactions").get_json()["items"]
    assert (rows[0]["type"], rows[0]["amount"], rows[0]["reference"]) == ("Expense", "-25.00",
                                                                          f"{order['order_id']}:paid")

    big = place(client, unit_price="100")["order"]
    short = client.post(f"/v1/accounts/acme/orders/{big['order_id']}/pay", json={"method": "balance"})
    assert (short.status_code, short.get_json()["error"]["code"]) == (422, "insufficient_credits")
    external = client.post(f"/v1/accounts/acme/orders/{big['order_id']}/pay",
                           json={"method": "external", "reference": "STRIPE-ch_1"})
    assert external.get_json()["balance"]["current_balance"] == "5.00"  # paid outside: in and out
    assert [r["type"] for r in client.get("/v1/accounts/acme/transactions").get_json()["items"][:2]] == [
        "Expense", "Recharge"]  # the recharge gets its receipt like any other

    pending = place(client)["order"]
    cancelled = client.post(f"/v1/accounts/acme/orders/{pending['order_id']}/cancel")
    assert cancelled.get_json()["order"]["status"] == "cancelled"
    assert client.post(f"/v1/accounts/acme/orders/{pending['order_id']}/pay",
                       json={"method": "balance"}).status_code == 409
    assert balance(client)["current_balance"] == "5.00"


def test_orders_are_searched_filtered_exported_and_scoped(client, app, key_for):
    open_account(client, "acme", "SGD")
    open_account(client, "beta", "SGD")
    client.post("/v1/accounts/acme/recharges", json={"amount": "500"})
    phone = place(client, resource_id="cp-1")["order"]["order_id"]
    proxy = place(client, kind="agent", product="Residential proxy 10GB", unit_price="20")["order"]["order_id"]
    package = place(client, kind="package", product="Chat Pro yearly", unit_price="99")["order"]["order_id"]
    place(client, "beta", kind="agent", product="Residential proxy 10GB", unit_price="20")
    client.post(f"/v1/accounts/acme/orders/{proxy}/pay", json={"method": "balance"})

    def ids(query):
        answer = client.get(f"/v1/orders?account_id=acme&{query}")
        assert answer.status_code == 200, answer.get_json()
        return [o["order_id"] for o in answer.get_json()["items"]]

    assert ids("") == [package, proxy, phone]
    assert ids("kind=agent") == [proxy] and ids("status=COMPLETED") == [proxy]
    assert ids("status=pending_payment") == [package, phone] and ids("resource_id=cp-1") == [phone]
    assert ids("q=residential") == [proxy] and ids(f"q={phone[-6:]}") == [phone]
    assert ids("product=Chat Pro yearly") == [package]
    assert len(ids("created_from=2020-01&created_to=2099-12")) == 3 and ids("created_to=2020-01-01") == []
    assert len(client.get("/v1/orders").get_json()["items"]) == 4
    scoped = client_with_key(app, key_for("finance", "beta"))
    assert [o["account_id"] for o in scoped.get("/v1/orders").get_json()["items"]] == ["beta"]
    assert scoped.get(f"/v1/accounts/acme/orders/{phone}").status_code == 404
    assert client.get(f"/v1/accounts/beta/orders/{phone}").status_code == 404  # not that account's

    report = list(csv.DictReader(io.StringIO(client.get("/v1/orders/export.csv?account_id=acme&kind=agent")
                                             .get_data(as_text=True))))
    assert [(r["Order no."], r["Status"], r["Amount"]) for r in report] == [(proxy, "completed", "20.00")]
    sheet = load_workbook(io.BytesIO(client.get("/v1/orders/export.xlsx?account_id=acme").data)).active
    assert [c.value for c in sheet["A"]][1:] == [package, proxy, phone]
    assert client.get("/v1/orders/export.csv?limit=5").status_code == 400


def test_running_fees_meter_each_power_stretch_per_started_minute_and_per_cycle(client, clock):
    from datetime import datetime, timezone

    open_account(client, "acme", "SGD", billing_mode="postpaid", credit_limit="1000", drafts_need_approval=False)

    def phone(resource_id):
        order = place(client, resource_id=resource_id, unit_price="0", running_price="0.02",
                      running_unit="minute")["order"]["order_id"]
        client.post(f"/v1/accounts/acme/orders/{order}/pay", json={"method": "balance"})
        return order

    def power(order, event_id, state, at):
        answer = client.post(f"/v1/accounts/acme/orders/{order}/power",
                             json={"event_id": event_id, "state": state, "at": at})
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()["order"]

    one, two = phone("cp-1"), phone("cp-2")
    power(one, "e1", "on", "2026-11-26T10:00:00Z")
    power(two, "f1", "on", "2026-11-26T10:00:30Z")  # overlapping: each phone metered on its own
    assert power(one, "e2", "off", "2026-11-26T10:01:30Z")["running_fees"] == "0.04"  # 90 s: 2 started minutes
    assert power(one, "e2", "off", "2026-11-26T10:01:30Z")["running_fees"] == "0.04"  # delivered twice: once
    assert power(one, "e1", "on", "2026-11-26T10:00:00Z")["powered_on_since"] is None  # an old repeat: nothing
    assert power(two, "f2", "off", "2026-11-26T11:00:30Z")["running_fees"] == "1.20"  # 60 minutes
    rows = client.get("/v1/accounts/acme/transactions?application_id=cp-2").get_json()["items"]
    assert [(r["quantity"], r["unit"], r["unit_price"], r["amount"]) for r in rows] == [("60", "minute", "0.02",
                                                                                        "-1.20")]
    again_off = client.post(f"/v1/accounts/acme/orders/{one}/power",
                            json={"event_id": "e3", "state": "off", "at": "2026-11-26T10:05:00Z"})
    assert again_off.get_json()["order"]["running_fees"] == "0.04"  # a power-down while down changes nothing
    power(one, "e4", "on", "2026-11-30T23:00:00Z")  # no power-down comes before the cycle ends
    clock.now = datetime(2026, 12, 1, 0, 30, tzinfo=timezone.utc)
    [invoice_id] = client.post("/v1/accounts/acme/cycles/close", json={}).get_json()["invoice_ids"]
    lines = client.get(f"/v1/invoices/{invoice_id}").get_json()["lines"]
    fees = [x for x in lines if x["application_id"] == "cp-1"]
    assert [(x["quantity"], x["amount"]) for x in fees] == [("62", "1.24")]  # 2 + 60 minutes of November
    assert power(one, "e5", "off", "2026-12-01T00:10:00Z")["running_fees"] == "1.44"  # + 10 minutes of December
    bills = client.get("/v1/bills?account_id=acme&cycle=2026-12").get_json()["items"]
    assert [(b["product"], b["amount"]) for b in bills] == [("Cloud phone Android 12 running fee", "0.20")]
    late = client.post(f"/v1/accounts/acme/orders/{one}/power",
                       json={"event_id": "e6", "state": "on", "at": "2026-11-01T00:00:00Z"})
    assert (late.status_code, late.get_json()["error"]["code"]) == (400, "invalid_input")  # before the last one
    assert client.get(f"/v1/accounts/acme/orders/{one}").get_json()["running_fees"] == "1.44"


def test_a_paid_orders_receipt_downloads_from_the_order(client):
    from pypdf import PdfReader

    open_account(client, "acme", "SGD")
    client.post("/v1/accounts/acme/recharges", json={"amount": "50"})
    order = place(client, kind="package", product="Chat Pro", unit_price="30")["order"]["order_id"]
    assert client.get(f"/v1/accounts/acme/orders/{order}/receipt.pdf").status_code == 404  # not paid yet
    client.post(f"/v1/accounts/acme/orders/{order}/pay", json={"method": "balance"})
    pdf = client.get(f"/v1/accounts/acme/orders/{order}/receipt.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages)
    assert order in text and "30.00" in text and "Chat Pro x 1" in text
