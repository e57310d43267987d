"""Invoicing in the console, in headless Chromium: approve a draft from the action menu,
create & claim a prepaid invoice, claim a partial payment and see the dashboard change,
send a bulk reminder that reaches a real SMTP server."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from tests.console.conftest import ROOT, Console, log_in, screenshot
from tests.reminders.conftest import MailServer

pytestmark = [pytest.mark.postgres, pytest.mark.server]


@pytest.fixture(scope="module")
def books(console: Console) -> Console:
    """initech: prepaid with an e-mail address; tc-initech: postpaid on a test clock whose
    November cycle was closed into a draft (drafts of postpaid accounts wait for approval)."""
    console.api("POST", "/v1/accounts", json={
        "account_id": "initech", "billing_mode": "prepaid", "invoice_mode": "consolidated", "currency": "SGD",
        "tax_rate": "0.09", "payer": {"name": "Initech", "emails": ["ap@initech.test"]}})
    console.api("POST", "/v1/test-clocks", json={"id": "clock_console", "frozen_time": "2026-11-10T00:00:00Z"})
    console.api("POST", "/v1/accounts", json={
        "account_id": "tc-initech", "billing_mode": "postpaid", "invoice_mode": "consolidated", "currency": "SGD",
        "credit_limit": "100", "test_clock_id": "clock_console", "payer": {"name": "TC Initech", "emails": ["x@tc.test"]}})
    console.api("POST", "/v1/accounts/tc-initech/usage", json={
        "idempotency_key": "tc-1", "product": "sms", "quantity": "10", "unit_price": "0.5"})
    console.api("POST", "/v1/test-clocks/clock_console/advance", json={"frozen_time": "2026-12-02T00:00:00Z"})
    console.api("POST", "/v1/accounts", json={
        "account_id": "hooli", "billing_mode": "postpaid", "invoice_mode": "consolidated", "currency": "SGD",
        "credit_limit": "1000", "payer": {"name": "Hooli", "emails": ["ap@hooli.test"]}})
    for n in range(3):
        console.api("POST", "/v1/accounts/hooli/usage", json={
            "idempotency_key": f"h-{n}", "product": "voice", "quantity": "60", "unit_price": "0.25",
            "application_id": "ivr"})
    return console


def dashboard(page: Any, currency: str = "SGD") -> dict[str, str]:
    row = page.locator(f"tr[data-currency={currency}]")
    return {"paid": row.locator("[data-sum=paid]").inner_text(), "outstanding": row.locator("[data-sum=outstanding]").inner_text(),
            "unsettled": page.locator("[data-count=unsettled]").inner_text()}


def test_a_draft_is_approved_from_the_action_menu(browser, books: Console):
    page = log_in(browser, books, "finance")
    page.goto(f"{books.base}/console/invoices?account_id=tc-initech&status=draft")
    row = page.locator("tbody tr[data-invoice]")
    assert row.count() == 1 and "draft" in row.inner_text()
    invoice_id = row.get_attribute("data-invoice")
    row.get_by_text("Actions").click()
    row.get_by_role("button", name="Approve").click()
    assert f"Invoice {invoice_id} approved." in page.inner_text("main")
    assert books.api("GET", f"/v1/invoices/{invoice_id}")["status"] == "approved"


def test_create_and_claim_a_prepaid_invoice(browser, books: Console):
    page = log_in(browser, books, "finance")
    page.goto(f"{books.base}/console/invoices/new?type=prepaid&account_id=initech")
    page.get_by_label("Recharge amount before tax").fill("100.00")
    page.get_by_label("Description").fill("Credits for December")
    page.get_by_label("Method").fill("bank_transfer")
    page.get_by_label("Reference").fill("TT-2001")
    page.get_by_role("button", name="Create & Claim").click()
    assert "created and its payment claimed" in page.inner_text("main")
    invoices = books.api("GET", "/v1/invoices?account_id=initech")["items"]
    claimed = [i for i in invoices if i["total"] == "109.00"]  # 100.00 and 9% tax
    assert len(claimed) == 1 and claimed[0]["payment_status"] == "paid"
    lines = books.api("GET", f"/v1/invoices/{claimed[0]['invoice_id']}")["lines"]
    assert [line["description"] for line in lines] == ["Credits for December"]
    screenshot(page, "invoices-1280")


def test_a_bad_invoice_date_is_shown_beside_its_field_and_nothing_is_issued(browser, books: Console):
    page = log_in(browser, books, "finance")
    before = len(books.api("GET", "/v1/invoices?account_id=initech")["items"])
    page.goto(f"{books.base}/console/invoices/new?type=prepaid&account_id=initech")
    page.get_by_label("Recharge amount before tax").fill("10")
    page.get_by_label("Invoice date").fill("2030-01-01")
    page.get_by_role("button", name="Create", exact=True).click()
    assert "invoice_date must fall" in page.locator("#invoice_date-error").inner_text()
    assert len(books.api("GET", "/v1/invoices?account_id=initech")["items"]) == before


def test_a_postpaid_invoice_of_fetched_records_then_a_partial_payment_moves_the_dashboard(browser, books: Console):
    today = datetime.now(timezone.utc).date().isoformat()
    page = log_in(browser, books, "finance")
    page.goto(f"{books.base}/console/invoices/new?type=postpaid")
    page.get_by_label("User (account)").fill("hooli")
    page.get_by_label("From").fill(today)
    page.get_by_label("To").fill(today)
    page.get_by_role("button", name="Fetch records").click()
    records = page.get_by_role("table", name="Records to invoice")
    assert "voice" in records.inner_text() and page.locator("[data-figure=total]").inner_text() == "45.00 SGD"
    page.get_by_role("button", name="Create", exact=True).click()
    assert "created." in page.inner_text("main")

    page.goto(f"{books.base}/console/invoices?account_id=hooli")
    before = dashboard(page)
    row = page.locator("tbody tr[data-invoice]", has_text="45.00 SGD").first
    row.get_by_text("Actions").click()
    row.get_by_role("link", name="Claim payment").click()
    page.get_by_label("Amount received (SGD)").fill("20")
    page.get_by_label("Reference").fill("TT-2002")
    page.get_by_role("button", name="Claim payment").click()
    after = dashboard(page)
    assert Decimal(after["paid"].split()[0]) - Decimal(before["paid"].split()[0]) == 20
    assert Decimal(before["outstanding"].split()[0]) - Decimal(after["outstanding"].split()[0]) == 20
    assert after["unsettled"] == before["unsettled"]  # partially paid is still unsettled
    assert "partially_paid" in page.locator("tbody tr[data-invoice]", has_text="45.00 SGD").first.inner_text()


def test_a_bulk_reminder_reaches_a_real_smtp_server(browser, books: Console):
    page = log_in(browser, books, "finance")
    page.goto(f"{books.base}/console/invoices/new?type=prepaid&account_id=initech")
    page.get_by_label("Recharge amount before tax").fill("10")
    page.get_by_label("Description").fill("To remind")
    page.get_by_role("button", name="Create", exact=True).click()
    page.goto(f"{books.base}/console/invoices?account_id=initech&payment_status=unpaid")
    unpaid = page.locator("tbody tr[data-invoice]").count()
    assert unpaid >= 1
    page.get_by_role("button", name="Send reminders for unpaid invoices found").click()
    assert f"{unpaid} reminder(s) queued" in page.inner_text("main")
    mail = MailServer()
    mail.start()
    try:
        env = {**books.env, "LEDGER_SMTP_HOST": "127.0.0.1", "LEDGER_SMTP_PORT": str(mail.port),
               "LEDGER_SMTP_FROM": "billing@ledger.test"}
        subprocess.run([sys.executable, "-m", "entrypoints.cli", "send-reminders", "--once"], env=env, cwd=ROOT,
                       check=True, capture_output=True, timeout=60)
    finally:
        mail.stop()
    assert len(mail.received) == unpaid
    assert all(r.recipients == ["ap@initech.test"] for r in mail.received)
    assert all("Payment reminder" in r.message["Subject"] for r in mail.received)


def test_an_auditor_gets_no_invoicing_page(browser, books: Console):
    page = log_in(browser, books, "auditor")
    assert page.goto(f"{books.base}/console/invoices").status == 403
    assert page.goto(f"{books.base}/console/invoices/new").status == 403
