"""Figures and documents the finance workflow showed wrong (issue 15), each through HTTP on
SQLite and PostgreSQL; documents are read back (pypdf) and compared with the JSON."""

from __future__ import annotations

import io
from datetime import datetime, timezone

import pytest
from pypdf import PdfReader


def open_account(client, account_id, currency, billing_mode="prepaid", **extra):
    opened = client.post("/v1/accounts", json={"account_id": account_id, "billing_mode": billing_mode,
                                               "invoice_mode": "consolidated", "currency": currency, **extra})
    assert opened.status_code == 201, opened.get_json()


def pdf_text(response) -> str:
    assert response.status_code == 200
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.data)).pages)


def test_the_dashboard_never_adds_currencies(client, clock):
    for account_id, currency, amount in (("sg", "SGD", "1750.81544"), ("in", "INR", "1770"), ("tr", "TRY", "99.5")):
        open_account(client, account_id, currency)
        client.post(f"/v1/accounts/{account_id}/invoices", json={
            "type": "topup", "amount": amount, "description": "credits",
            "claim": {"payment_id": f"pay-{account_id}", "method": "card"}})
    dashboard = client.get("/v1/invoices/dashboard").get_json()
    assert dashboard["paid"] == 3  # counts may add up across currencies
    assert {c["currency"]: (c["paid"], c["paid_amount"]) for c in dashboard["currencies"]} == {
        "SGD": (1, "1750.81544"), "INR": (1, "1770.00"), "TRY": (1, "99.50")}
    assert {g["currency"] for g in dashboard["groups"]} == {"SGD", "INR", "TRY"}
    filtered = client.get("/v1/invoices/dashboard?account_id=in").get_json()
    assert [(c["currency"], c["approved_total"]) for c in filtered["currencies"]] == [("INR", "1770.00")]


def test_a_cycle_cannot_be_closed_in_the_future(client, clock, run_cli):
    open_account(client, "post", "EUR", billing_mode="postpaid", credit_limit="100")
    client.post("/v1/accounts/post/usage", json={"idempotency_key": "u", "product": "sms", "amount": "3"})
    for as_of in ("2026-12-01T00:00:00Z", "2199-12-31T00:00:00Z"):
        refused = client.post("/v1/accounts/post/cycles/close", json={"as_of": as_of})
        assert (refused.status_code, refused.get_json()["error"]["code"]) == (422, "close_in_future")
    assert client.get("/v1/invoices?account_id=post").get_json()["items"] == []
    assert client.get("/v1/accounts/post/invoices/future").get_json()["cut_off_date"] == "2026-11-30"
    cli = run_cli("close-cycles", "--as-of", "2199-01-01T00:00:00+0000")  # the CLI reads the real clock
    assert cli.exit_code != 0 and "close_in_future" in cli.output + str(cli.exception)
    clock.now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert len(client.post("/v1/accounts/post/cycles/close", json={}).get_json()["invoice_ids"]) == 1


def test_charge_lines_print_no_quantity_the_data_does_not_hold(client, clock):
    open_account(client, "pre", "SGD", tax_rate="0.09")
    client.post("/v1/accounts/pre/recharges", json={"amount": "100"})
    client.post("/v1/accounts/pre/charges", json={"idempotency_key": "c", "kind": "subscription",
                                                  "description": "Pro plan", "amount": "12.34"})
    clock.now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    [invoice_id] = client.post("/v1/accounts/pre/cycles/close", json={}).get_json()["invoice_ids"]
    lines = client.get(f"/v1/invoices/{invoice_id}").get_json()["lines"]
    assert [(line["quantity"], line["amount"]) for line in lines] == [(None, "12.34")]
    text = pdf_text(client.get(f"/v1/invoices/{invoice_id}.pdf"))
    row = next(line for line in text.splitlines() if "12.34" in line and "Pro plan" in line)
    assert " 0 " not in f" {row} " and "0.00 " not in row.split("12.34")[0], row


@pytest.mark.parametrize("path", ["/v1/accounts/acme/transactions?app_id=x", "/v1/bills?foo=bar",
                                  "/v1/invoices?acount_id=acme", "/v1/payments?since=2026-01-01",
                                  "/v1/accounts/acme/events?kind=x", "/v1/invoices/dashboard?currency=SGD"])
def test_lists_refuse_a_filter_they_do_not_know(client, path):
    open_account(client, "acme", "SGD")
    refused = client.get(path)
    assert refused.status_code == 400, refused.get_json()
    assert refused.get_json()["error"]["code"] == "invalid_input"


def invoice_report(client, query: str) -> list[dict[str, str]]:
    import csv

    return list(csv.DictReader(io.StringIO(client.get(f"/v1/invoices/export.csv?{query}").get_data(as_text=True))))


def test_a_voided_draft_owes_nothing_and_every_document_says_what_its_json_says(client, clock):
    open_account(client, "post", "SGD", billing_mode="postpaid", credit_limit="500", tax_rate="0.09")
    client.post("/v1/accounts/post/usage", json={"idempotency_key": "u", "product": "sms", "amount": "89.85"})
    clock.now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    [invoice_id] = client.post("/v1/accounts/post/cycles/close", json={}).get_json()["invoice_ids"]
    assert client.post(f"/v1/invoices/{invoice_id}/void").status_code == 200
    body = client.get(f"/v1/invoices/{invoice_id}").get_json()
    assert (body["status"], body["payment_status"], body["outstanding"], body["issued_at"], body["due_on"]) == (
        "void", "none_owed", "0.00", None, None)
    assert client.get("/v1/invoices?payment_status=unpaid").get_json()["items"] == []
    assert [i["invoice_id"] for i in client.get("/v1/invoices?payment_status=none_owed").get_json()["items"]] == [
        invoice_id]
    text = pdf_text(client.get(f"/v1/invoices/{invoice_id}.pdf"))
    assert "Outstanding 0.00 SGD" in text and "Amount due 0.00 SGD" in text and "97.94" in text
    assert "Issue date —" in text and "Due date —" in text
    [row] = invoice_report(client, "account_id=post")
    assert (row["Issue date"], row["Due date"], row["Outstanding"], row["Payment status"], row["Due status"]) == (
        "", "", "0.00", "None owed", "Not due")


def test_one_rule_for_a_periods_last_day_in_json_pdf_exports_and_the_future_invoice(client, clock):
    open_account(client, "kol", "INR", billing_mode="postpaid", credit_limit="500", time_zone="Asia/Kolkata")
    client.post("/v1/accounts/kol/usage", json={"idempotency_key": "u", "product": "sms", "amount": "10",
                                                "occurred_at": "2026-11-20T12:00:00+05:30"})
    future = client.get("/v1/accounts/kol/invoices/future").get_json()
    assert future["cut_off_date"] == "2026-11-30"
    clock.now = datetime(2026, 12, 1, 0, 0, tzinfo=timezone.utc)  # Dec 1, 05:30 in Kolkata: the cycle ended
    [invoice_id] = client.post("/v1/accounts/kol/cycles/close", json={}).get_json()["invoice_ids"]
    body = client.get(f"/v1/invoices/{invoice_id}").get_json()
    assert (body["period_first_day"], body["period_last_day"]) == ("2026-11-01", "2026-11-30")
    assert "Period 2026-11-01 – 2026-11-30" in pdf_text(client.get(f"/v1/invoices/{invoice_id}.pdf"))
    [row] = invoice_report(client, "account_id=kol")
    assert (row["Period start"], row["Period end"]) == ("2026-11-01", "2026-11-30")
    from ledger_core.cycles import local_days  # a period that ends in the morning includes that day
    morning = local_days(datetime(2026, 12, 1, tzinfo=timezone.utc), datetime(2026, 12, 3, 4, 30, tzinfo=timezone.utc),
                         "Asia/Kolkata")
    assert [d.isoformat() for d in morning] == ["2026-12-01", "2026-12-03"]


def test_a_postpaid_manual_invoice_keeps_its_description(client, clock):
    open_account(client, "post", "SGD", billing_mode="postpaid", credit_limit="500")
    client.post("/v1/accounts/post/usage", json={"idempotency_key": "u", "product": "sms", "amount": "3",
                                                 "occurred_at": "2026-11-10T00:00:00Z"})
    created = client.post("/v1/accounts/post/invoices", json={
        "type": "usage", "date_from": "2026-11-01", "date_to": "2026-11-20", "description": "Early invoice for Q4"})
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["description"] == "Early invoice for Q4"
    again = client.get(f"/v1/invoices/{created.get_json()['invoice_id']}").get_json()
    assert again["description"] == "Early invoice for Q4"


def test_find_customers_by_text_modes_and_what_they_owe(client, key_for, app, clock):
    from tests.conftest import client_with_key

    open_account(client, "acme-sg", "SGD", payer={"name": "Acme Pte Ltd", "emails": ["billing@acme.test"]})
    open_account(client, "beta", "INR", billing_mode="postpaid", credit_limit="100",
                 payer={"organization": "Beta Holdings", "emails": ["ap@beta.example"]})
    open_account(client, "gamma", "SGD")
    client.post("/v1/accounts/gamma/usage", json={"idempotency_key": "u", "product": "sms", "amount": "5"})

    def ids(query: str) -> list[str]:
        answer = client.get(f"/v1/accounts?{query}")
        assert answer.status_code == 200, answer.get_json()
        return [a["account_id"] for a in answer.get_json()["items"]]

    assert ids("") == ["acme-sg", "beta", "gamma"]
    assert ids("q=ACME") == ["acme-sg"] and ids("q=beta.example") == ["beta"] and ids("q=holdings") == ["beta"]
    assert ids("billing_mode=postpaid") == ["beta"] and ids("currency=SGD") == ["acme-sg", "gamma"]
    assert ids("in_overdraft=true") == ["gamma"] and ids("in_overdraft=false") == ["acme-sg", "beta"]
    assert ids("sort=newest") == ["gamma", "beta", "acme-sg"]
    first = client.get("/v1/accounts?limit=2&sort=newest").get_json()
    rest = client.get(f"/v1/accounts?limit=2&sort=newest&cursor={first['next_cursor']}").get_json()
    assert [a["account_id"] for a in first["items"] + rest["items"]] == ["gamma", "beta", "acme-sg"]
    assert rest["next_cursor"] is None
    assert first["items"][0]["balance"]["overdraft"] == "5.00"  # each row with its figures
    assert client.get("/v1/accounts?q=%25").get_json()["items"] == []  # % is text, not a wildcard
    scoped = client_with_key(app, key_for("finance", "beta"))
    assert [a["account_id"] for a in scoped.get("/v1/accounts").get_json()["items"]] == ["beta"]
    assert client.get("/v1/accounts?cursor=nonsense").status_code == 400
    client.post("/v1/accounts/beta/usage", json={"idempotency_key": "u", "product": "sms", "amount": "10"})
    clock.now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    [invoice_id] = client.post("/v1/accounts/beta/cycles/close", json={}).get_json()["invoice_ids"]
    assert ids("has_amount_due=true") == []  # a draft owes nothing yet
    client.post(f"/v1/invoices/{invoice_id}/approve")
    assert ids("has_amount_due=true") == ["beta"] and ids("has_amount_due=false") == ["acme-sg", "gamma"]


def test_payments_received_include_a_recharge_that_paid_an_invoice_with_its_currency(client, clock):
    open_account(client, "post", "EUR", billing_mode="postpaid", credit_limit="100")
    client.post("/v1/accounts/post/usage", json={"idempotency_key": "u", "product": "sms", "amount": "30"})
    clock.now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    [invoice_id] = client.post("/v1/accounts/post/cycles/close", json={}).get_json()["invoice_ids"]
    client.post(f"/v1/invoices/{invoice_id}/approve")
    recharge = client.post("/v1/accounts/post/recharges", json={"amount": "50", "reference": "WIRE-9",
                                                                "method": "wire"}).get_json()
    client.post("/v1/accounts/post/payments", json={"payment_id": "p-2", "amount": "5"})
    items = client.get("/v1/payments?account_id=post").get_json()["items"]
    assert [(p["payment_id"], p["currency"], p["amount"], p["method"]) for p in items] == [
        ("p-2", "EUR", "5.00", ""), (recharge["transaction_no"], "EUR", "50.00", "wire")]
    assert items[1]["allocations"] == [{"invoice_id": invoice_id, "amount": "30.00", "outstanding_after": "0.00"}]
    detail = client.get(f"/v1/invoices/{invoice_id}").get_json()
    assert (detail["payment_status"], [p["payment_id"] for p in detail["payments"]]) == (
        "paid", [recharge["transaction_no"]])
    text = pdf_text(client.get(f"/v1/invoices/{invoice_id}.pdf"))
    assert "WIRE-9" in text and "Amount paid 30.00 EUR" in text


def test_choices_are_matched_without_regard_to_case_and_billing_mode_defaults_to_prepaid(client):
    opened = client.post("/v1/accounts", json={"account_id": "self", "invoice_mode": "CONSOLIDATED",
                                               "currency": "SGD"})
    assert opened.status_code == 201, opened.get_json()
    assert (opened.get_json()["billing_mode"], opened.get_json()["invoice_mode"]) == ("prepaid", "consolidated")
    client.post("/v1/accounts/self/recharges", json={"amount": "5"})
    client.post("/v1/accounts/self/usage", json={"idempotency_key": "u", "product": "sms", "amount": "1"})
    for spelled in ("recharge", "RECHARGE", "Recharge"):
        rows = client.get(f"/v1/accounts/self/transactions?type={spelled}").get_json()["items"]
        assert [r["type"] for r in rows] == ["Recharge"], spelled
    assert len(client.get("/v1/bills?status=cleared").get_json()["items"]) == 1
    assert client.get("/v1/invoices?payment_status=UNPAID").status_code == 200
    assert client.get("/v1/accounts/self/transactions?type=refund-ish").status_code == 400
