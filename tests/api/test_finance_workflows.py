"""Workflow steps the billing pages describe that the ledger lacked (issue 15, items 9-11),
through HTTP on SQLite and PostgreSQL; documents are read back and compared with the JSON."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

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


def figures(client, account_id, **query):
    answer = client.get(f"/v1/accounts/{account_id}/balance", query_string=query)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def test_the_billing_mode_changes_both_ways_moving_no_money(client, clock):
    open_account(client, "acct", "SGD", billing_mode="postpaid", credit_limit="100")
    usage(client, "acct", "u1", "30", "2026-11-10T08:00:00Z")
    client.post("/v1/accounts/acct/reservations", json={"reservation_id": "h1", "amount": "10"})
    before = figures(client, "acct")
    assert (before["usable_credits"], before["overdraft"]) == ("60.00", "0.00")  # 100 - 30 - 10
    changed = client.patch("/v1/accounts/acct", json={"billing_mode": "prepaid", "credit_limit": "50"})
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["billing_mode"] == "prepaid"
    after = figures(client, "acct")
    for name in ("expecting_invoice", "amount_due", "current_balance", "reserved_credits"):
        assert after[name] == before[name], name  # no money moved
    assert (after["usable_credits"], after["overdraft"]) == ("10.00", "30.00")  # -30 + 50 - 10; 30 beyond funds
    [bill] = client.get("/v1/bills?account_id=acct").get_json()["items"]
    assert bill["status"] == "Pending"  # prepaid: pending until funds cover the usage
    events = client.get("/v1/accounts/acct/events").get_json()["items"]
    first = min(e["position"] for e in events if e["type"] in ("BillingModeChanged", "CreditLimitChanged"))
    assert figures(client, "acct", as_of=first - 1)["usable_credits"] == "60.00"  # as it stood before

    blocked = client.patch("/v1/accounts/acct", json={"billing_mode": "postpaid"})
    assert error_of(blocked)[:2] == (422, "billing_mode_change_blocked")  # in overdraft: -30 balance
    client.post("/v1/accounts/acct/recharges", json={"amount": "30"})
    [bill] = client.get("/v1/bills?account_id=acct").get_json()["items"]
    assert bill["status"] == "Cleared"
    assert client.patch("/v1/accounts/acct", json={"billing_mode": "postpaid", "credit_limit": "200"}).status_code == 200
    back = figures(client, "acct")
    assert (back["current_balance"], back["usable_credits"]) == ("0.00", "160.00")  # 200 + (-30) - 10
    events = client.get("/v1/accounts/acct/events").get_json()["items"]
    assert [e["type"] for e in events].count("BillingModeChanged") == 2


def test_filters_take_months_and_days_as_the_accounts_local_days(client, clock):
    open_account(client, "kol", "INR", billing_mode="postpaid", credit_limit="500", time_zone="Asia/Kolkata",
                 drafts_need_approval=False)
    open_account(client, "utc", "SGD", billing_mode="postpaid", credit_limit="500")
    usage(client, "kol", "u1", "1", "2026-11-10T10:00:00+05:30", application_id="phone-1",
          application_name="Cloud phone Mumbai")
    usage(client, "utc", "u1", "5", "2026-11-10T10:00:00Z")
    clock.now = datetime(2026, 11, 30, 19, 0, tzinfo=timezone.utc)  # December 1, 00:30 in Kolkata
    usage(client, "kol", "u2", "2", "2026-11-30T23:30:00+05:30", application_id="phone-2",
          application_name="Cloud phone Delhi")
    usage(client, "kol", "u3", "4", "2026-12-01T00:10:00+05:30", application_id="phone-2")

    def refs(query: str) -> list[str]:
        answer = client.get(f"/v1/accounts/kol/transactions?{query}")
        assert answer.status_code == 200, answer.get_json()
        return sorted(r["reference"] for r in answer.get_json()["items"])

    # booked: when the ledger wrote the event (the real clock), by the account's local day
    rows = client.get("/v1/accounts/kol/transactions").get_json()["items"]
    booked = datetime.fromisoformat(rows[-1]["time"].replace("Z", "+00:00"))
    day = booked.astimezone(ZoneInfo("Asia/Kolkata")).date()
    assert refs(f"from={day}") == refs(f"from={day:%Y-%m}") == refs(f"to={day}") == ["u1", "u2", "u3"]
    assert refs(f"to={day - timedelta(days=1)}") == [] and refs(f"from={day + timedelta(days=1)}") == []
    assert refs(f"from={rows[-1]['time']}")[:1] == ["u1"]  # a full time is that moment
    # occurred: u2 on November 30, u3 on December 1 (local)
    assert refs("occurred_from=2026-11-30&occurred_to=2026-11-30") == ["u2"]
    assert refs("occurred_to=2026-11") == ["u1", "u2"] and refs("occurred_from=2026-12") == ["u3"]
    assert refs("application_id=phone-2") == ["u2", "u3"] and refs("q=DELHI") == ["u2"]
    assert refs("type=EXPENSE&application_id=phone-1") == ["u1"]
    names = [r["application_name"] for r in client.get("/v1/accounts/kol/transactions?q=mumbai").get_json()["items"]]
    assert names == ["Cloud phone Mumbai"]
    for bad in ("from=2026-13", "from=2026-11-31", "occurred_to=11/2026"):
        assert error_of(client.get(f"/v1/accounts/kol/transactions?{bad}"))[:2] == (400, "invalid_input"), bad

    def bills(query: str) -> list[tuple[str, str]]:
        answer = client.get(f"/v1/bills?{query}")
        assert answer.status_code == 200, answer.get_json()
        return sorted((b["account_id"], b["amount"]) for b in answer.get_json()["items"])

    # the Kolkata November cycle starts on October 31 at 18:30 UTC: still a November cycle
    assert bills("cycle=2026-11") == [("kol", "3.00"), ("utc", "5.00")]
    assert bills("cycle=2026-12") == [("kol", "4.00")]
    assert bills("cycle_from=2026-11-01&cycle_to=2026-11-30&account_id=kol") == [("kol", "3.00")]
    assert bills("cycle_from=2026-10-31T18:30:00Z&cycle_to=2026-10-31T18:30:00.000001Z") == [("kol", "3.00")]
    assert error_of(client.get("/v1/bills?cycle=2026-11&cycle_from=2026-10"))[:2] == (400, "invalid_input")

    [invoice_id] = client.post("/v1/accounts/kol/cycles/close", json={}).get_json()["invoice_ids"]

    def invoices(query: str) -> list[str]:
        answer = client.get(f"/v1/invoices?{query}")
        assert answer.status_code == 200, answer.get_json()
        return [i["invoice_id"] for i in answer.get_json()["items"]]

    assert invoices("period_from=2026-11&period_to=2026-11") == [invoice_id]
    assert invoices("period_from=2026-12") == [] and invoices("period_to=2026-10") == []
    assert invoices("period_from=2026-11-30T18:00:00Z") == [invoice_id]
    dashboard = client.get("/v1/invoices/dashboard?period_from=2026-11&period_to=2026-11").get_json()
    assert [(c["currency"], c["approved"]) for c in dashboard["currencies"]] == [("INR", 1)]
