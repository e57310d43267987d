"""Workflow steps the billing pages describe that the ledger lacked (issue 15, items 9-11),
through HTTP on SQLite and PostgreSQL; documents are read back and compared with the JSON."""

from __future__ import annotations

import io
from datetime import datetime, timezone

from openpyxl import load_workbook

from tests.api.test_finance_fixes import open_account, pdf_text
from tests.conftest import client_with_key


def usage(client, account_id, key, amount, occurred_at, product="sms", **line):
    answer = client.post(f"/v1/accounts/{account_id}/usage", json={
        "idempotency_key": key, "product": product, "amount": amount, "occurred_at": occurred_at, **line})
    assert answer.status_code == 201, answer.get_json()


def error_of(answer):
    body = answer.get_json()
    return answer.status_code, body["error"]["code"], body["error"].get("details", {}).get("field")


def test_a_manual_invoice_takes_its_dates_and_every_document_prints_them(client, clock):
    open_account(client, "post", "SGD", billing_mode="postpaid", credit_limit="500", payment_terms_days=30)
    usage(client, "post", "u1", "4", "2026-11-10T08:00:00Z")
    created = client.post("/v1/accounts/post/invoices", json={
        "type": "usage", "date_from": "2026-11-01", "date_to": "2026-11-20", "invoice_date": "2026-11-21",
        "due_date": "2026-12-05"})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert (body["issue_date"], body["due_on"]) == ("2026-11-21", "2026-12-05")
    assert body["number"].startswith("INV-2026-")
    text = pdf_text(client.get(f"/v1/invoices/{body['invoice_id']}.pdf"))
    assert "2026-11-21" in text and "2026-12-05" in text
    sheet = load_workbook(io.BytesIO(client.get("/v1/invoices/export.xlsx?account_id=post").data)).active
    header = [c.value for c in sheet[1]]
    row = dict(zip(header, [c.value for c in sheet[2]]))
    assert (str(row["Issue date"])[:10], str(row["Due date"])[:10]) == ("2026-11-21", "2026-12-05")

    topup = client.post("/v1/accounts/post/invoices", json={"type": "topup", "amount": "10"}).get_json()
    assert (topup["issue_date"], topup["due_on"]) == ("2026-11-26", "2026-12-26")  # today + the account's terms


def test_an_invoice_date_outside_its_bounds_is_refused_and_nothing_is_written(client, clock):
    open_account(client, "post", "SGD", billing_mode="postpaid", credit_limit="500")
    usage(client, "post", "u1", "4", "2026-11-10T08:00:00Z")
    refusals = [
        ({"invoice_date": "2026-11-27"}, "invoice_date"),  # tomorrow
        ({"invoice_date": "2026-11-19"}, "invoice_date"),  # before the last day it bills
        ({"invoice_date": "2026-11-21", "due_date": "2026-11-20"}, "due_date"),  # due before issued
        ({"invoice_date": "2026-11-21", "due_date": "2027-11-22"}, "due_date"),  # beyond the longest terms
    ]
    for dates, field in refusals:
        answer = client.post("/v1/accounts/post/invoices", json={
            "type": "usage", "date_from": "2026-11-01", "date_to": "2026-11-20", **dates})
        assert error_of(answer) == (422, "invoice_date_out_of_range", field), dates
    old = client.post("/v1/accounts/post/invoices", json={"type": "topup", "amount": "5",
                                                          "invoice_date": "2025-11-01"})
    assert error_of(old) == (422, "invoice_date_out_of_range", "invoice_date")  # more than a year back
    assert client.get("/v1/invoices?account_id=post").get_json()["items"] == []
    # a range that runs past today can be invoiced today
    late = client.post("/v1/accounts/post/invoices", json={
        "type": "usage", "date_from": "2026-11-01", "date_to": "2026-11-30", "invoice_date": "2026-11-26"})
    assert late.status_code == 201, late.get_json()


def test_a_backdated_invoice_is_owed_before_those_issued_after_it(client, clock):
    open_account(client, "post", "SGD", billing_mode="postpaid", credit_limit="500")
    usage(client, "post", "u1", "4", "2026-11-02T08:00:00Z")
    usage(client, "post", "u2", "6", "2026-11-20T08:00:00Z")
    later = client.post("/v1/accounts/post/invoices", json={
        "type": "usage", "date_from": "2026-11-15", "date_to": "2026-11-25"}).get_json()
    earlier = client.post("/v1/accounts/post/invoices", json={
        "type": "usage", "date_from": "2026-11-01", "date_to": "2026-11-05", "invoice_date": "2026-11-06"}).get_json()
    assert earlier["issue_date"] == "2026-11-06" and later["issue_date"] == "2026-11-26"
    client.post("/v1/accounts/post/payments", json={"payment_id": "p1", "amount": "4"})
    assert client.get(f"/v1/invoices/{earlier['invoice_id']}").get_json()["payment_status"] == "paid"
    assert client.get(f"/v1/invoices/{later['invoice_id']}").get_json()["payment_status"] == "unpaid"


def test_issuer_defaults_for_terms_and_notes_that_a_request_overrides(client, key_for, app, clock):
    assert client.get("/v1/invoices/defaults").get_json() == {"terms": "", "notes": ""}
    finance = client_with_key(app, key_for("finance"))
    refused = finance.put("/v1/invoices/defaults", json={"terms": "Net 30"})
    assert refused.status_code == 403  # admins set them; finance reads them
    assert finance.get("/v1/invoices/defaults").status_code == 200
    set_ = client.put("/v1/invoices/defaults", json={"terms": "Net 30.\nLate fees apply.", "notes": "Thank you!"})
    assert set_.get_json() == {"terms": "Net 30.\nLate fees apply.", "notes": "Thank you!"}
    assert client.put("/v1/invoices/defaults", json={"notes": "Danke"}).get_json() == {
        "terms": "Net 30.\nLate fees apply.", "notes": "Danke"}  # what is not given is kept
    assert client.put("/v1/invoices/defaults", json={"terms": "bad\x00byte"}).status_code == 400

    open_account(client, "pre", "SGD")
    plain = client.post("/v1/accounts/pre/invoices", json={"type": "topup", "amount": "10"}).get_json()
    assert (plain["terms"], plain["notes"]) == ("Net 30.\nLate fees apply.", "Danke")
    text = pdf_text(client.get(f"/v1/invoices/{plain['invoice_id']}.pdf"))
    assert "Late fees apply." in text and "Danke" in text
    own = client.post("/v1/accounts/pre/invoices", json={"type": "topup", "amount": "10", "terms": "Prepaid",
                                                         "notes": ""}).get_json()
    assert (own["terms"], own["notes"]) == ("Prepaid", "")
    client.put("/v1/invoices/defaults", json={"terms": "", "notes": ""})
    assert client.get(f"/v1/invoices/{plain['invoice_id']}").get_json()["terms"] == "Net 30.\nLate fees apply."

    client.put("/v1/invoices/defaults", json={"terms": "Cycle terms"})
    open_account(client, "post", "SGD", billing_mode="postpaid", credit_limit="50", drafts_need_approval=False)
    usage(client, "post", "u1", "4", "2026-11-10T08:00:00Z")
    clock.now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    [cycle] = client.post("/v1/accounts/post/cycles/close", json={}).get_json()["invoice_ids"]
    assert client.get(f"/v1/invoices/{cycle}").get_json()["terms"] == "Cycle terms"


def test_a_usage_invoice_is_previewed_and_then_issued_exactly_as_previewed(client, app, key_for, clock):
    open_account(client, "post", "SGD", billing_mode="postpaid", credit_limit="500", tax_rate="0.09")
    usage(client, "post", "u1", "1.5", "2026-11-10T08:00:00Z", quantity="150", unit="sms", application_id="app-1")
    usage(client, "post", "u2", "2.25", "2026-11-10T09:00:00Z", quantity="225", unit="sms", application_id="app-1")
    usage(client, "post", "u3", "0.333333", "2026-11-11T09:00:00Z", product="voice", quantity="1", unit="minute")
    usage(client, "post", "u4", "9", "2026-11-21T09:00:00Z")  # outside the range
    preview = client.get("/v1/accounts/post/invoices/preview?date_from=2026-11-01&date_to=2026-11-20")
    assert preview.status_code == 200, preview.get_json()
    body = preview.get_json()
    assert [(r["date"], r["product"], r["application_id"], r["quantity"], r["amount"]) for r in body["records"]] == [
        ("2026-11-10", "sms", "app-1", "375", "3.75"), ("2026-11-11", "voice", None, "1", "0.333333")]
    assert (body["subtotal"], body["tax"], body["total"]) == ("4.083333", "0.37", "4.453333")
    assert (body["invoice_date"], body["due_date"]) == ("2026-11-26", "2026-12-10")
    assert client.get("/v1/invoices?account_id=post").get_json()["items"] == []  # nothing written
    issued = client.post("/v1/accounts/post/invoices", json={
        "type": "usage", "date_from": "2026-11-01", "date_to": "2026-11-20"}).get_json()
    assert (issued["subtotal"], issued["tax"], issued["total"]) == (body["subtotal"], body["tax"], body["total"])
    assert [(x["product"], x["quantity"], x["amount"]) for x in issued["lines"]] == [
        (x["product"], x["quantity"], x["amount"]) for x in body["lines"]]
    nothing = client.get("/v1/accounts/post/invoices/preview?date_from=2026-11-01&date_to=2026-11-20")
    assert error_of(nothing)[:2] == (422, "nothing_to_invoice")
    assert error_of(client.get("/v1/accounts/post/invoices/preview?date_from=2026-11-01"))[:2] == (
        400, "invalid_input")
    open_account(client, "other", "SGD", billing_mode="postpaid", credit_limit="5")
    scoped = client_with_key(app, key_for("finance", "other"))
    hidden = scoped.get("/v1/accounts/post/invoices/preview?date_from=2026-11-01&date_to=2026-11-30")
    assert hidden.status_code == 404
