"""The billing console end to end in headless Chromium: log in, find a customer, read its
figures, filter bills, download a bill and the exports and read them back; what an auditor
and a customer's login may and may not see; screenshots at desktop and phone width."""

from __future__ import annotations

import io
import re
from typing import Any

import openpyxl
import pytest
import requests
from pypdf import PdfReader

from tests.console.conftest import Console, log_in, screenshot

pytestmark = [pytest.mark.postgres, pytest.mark.server]
GREEN, RED = "rgb(27, 127, 59)", "rgb(179, 38, 30)"


@pytest.fixture(scope="module")
def books(console: Console) -> Console:
    """acme: prepaid and funded (its bills clear); globex: postpaid (its bills wait, pending)."""
    console.api("POST", "/v1/accounts", json={
        "account_id": "acme", "billing_mode": "prepaid", "invoice_mode": "consolidated", "currency": "SGD",
        "credit_limit": "10", "payer": {"name": "Acme Pte Ltd", "emails": ["billing@acme.test"]}})
    console.api("POST", "/v1/accounts", json={
        "account_id": "globex", "billing_mode": "postpaid", "invoice_mode": "consolidated", "currency": "SGD",
        "credit_limit": "500", "payer": {"name": "Globex Corp", "emails": ["ap@globex.test"]}})
    console.api("POST", "/v1/accounts/acme/recharges", json={"amount": "65.98", "reference": "PAY-1", "method": "card"})
    for account in ("acme", "globex"):
        for n, (product, app) in enumerate((("sms", "otp"), ("sms", "otp"), ("voice", "ivr"))):
            console.api("POST", f"/v1/accounts/{account}/usage", json={
                "idempotency_key": f"{account}-{n}", "product": product, "quantity": "100", "unit_price": "0.0075",
                "application_id": app, "application_name": app.upper()})
    return console


def sheet_rows(download: Any) -> list[tuple[Any, ...]]:
    with open(download.path(), "rb") as file:
        return list(openpyxl.load_workbook(io.BytesIO(file.read()), read_only=True).active.iter_rows(values_only=True))


def figure(page: Any, label: str) -> tuple[str, str, str]:
    """A figure's text, CSS class and colour as the browser renders it."""
    cell = page.locator(f'[data-figure="{label}"]')
    return cell.inner_text(), cell.get_attribute("class") or "", cell.evaluate("e => getComputedStyle(e).color")


def test_finance_finds_a_customer_reads_its_figures_and_filters_and_downloads_bills(browser, books: Console):
    page = log_in(browser, books, "finance")
    assert page.url.endswith("/console/")
    page.get_by_label("Search").fill("Acme")
    page.get_by_role("button", name="Search").click()
    assert "q=Acme" in page.url  # the filter lives in the URL
    table = page.get_by_role("table", name="Customers")
    assert "acme" in table.inner_text() and "globex" not in table.inner_text()

    page.get_by_role("link", name="acme", exact=True).click()
    balance = books.api("GET", "/v1/accounts/acme/balance")
    text, css, colour = figure(page, "Current balance")
    assert text == f"{balance['current_balance']} SGD CR" and "cr" in css and colour == GREEN
    assert page.locator("svg[role=img] rect").count() == 2  # this cycle: sms and voice, stacked
    page.goto(f"{books.base}/console/accounts/globex")
    owed = books.api("GET", "/v1/accounts/globex/balance")["expecting_invoice"]
    text, css, colour = figure(page, "Expecting invoice")
    assert text == f"{owed} SGD DR" and "dr" in css and colour == RED

    page.goto(f"{books.base}/console/bills")
    page.get_by_label("Product").fill("sms")
    page.get_by_label("Status").select_option("Pending")
    page.get_by_role("button", name="Filter").click()
    assert "product=sms" in page.url and "status=Pending" in page.url
    rows = page.locator("table[aria-label=Bills] tbody tr")
    assert rows.count() == 1
    row_text = rows.first.inner_text()
    assert "globex" in row_text and "sms" in row_text and "Pending" in row_text and "1.50 SGD" in row_text
    bill_no = rows.first.get_attribute("data-bill")

    with page.expect_download() as bill_download:
        rows.first.get_by_role("link", name="Download bill").click()
    pdf_text = "".join(p.extract_text() for p in PdfReader(bill_download.value.path()).pages)
    assert bill_no in pdf_text and "1.50" in pdf_text and "Globex" in pdf_text

    with page.expect_download() as export:
        page.get_by_role("link", name="Export data").click()
    assert export.value.suggested_filename == "bills.xlsx"
    table_rows = sheet_rows(export.value)
    header, data = table_rows[0], table_rows[1:]
    product = header.index("Product")
    assert data and {r[product] for r in data} == {"sms"}  # the page's filters, applied to the export
    assert all(r[header.index("Account")] == "globex" for r in data) if "Account" in header else True
    screenshot(page, "bills-desktop")


def test_balance_details_search_export_and_a_receipt(browser, books: Console):
    page = log_in(browser, books, "finance")
    page.goto(f"{books.base}/console/accounts/acme")
    page.get_by_role("link", name="Balance details").click()
    page.get_by_label("Type").select_option("Recharge")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table[aria-label='Balance details'] tbody tr")
    assert rows.count() == 1 and "65.98 SGD" in rows.first.inner_text()
    with page.expect_download() as receipt:
        rows.first.get_by_role("link", name="Receipt").click()
    assert "65.98" in "".join(p.extract_text() for p in PdfReader(receipt.value.path()).pages)

    page.get_by_label("Type").select_option("")
    page.get_by_label("Search").fill("sms")
    page.get_by_role("button", name="Search").click()
    assert rows.count() == 2
    with page.expect_download() as export:
        page.get_by_role("link", name="Export").click()
    assert len(sheet_rows(export.value)) == 1 + 2  # the header and the two sms rows


def test_a_bad_filter_is_shown_beside_its_field(browser, books: Console):
    page = log_in(browser, books, "finance")
    page.goto(f"{books.base}/console/bills?cycle=2026-13")
    error = page.locator("#cycle-error")
    assert error.is_visible() and "no date" in error.inner_text()
    assert page.get_by_label("Billing cycle").get_attribute("aria-invalid") == "true"


def test_an_auditor_sees_figures_but_no_write_action(browser, books: Console):
    page = log_in(browser, books, "auditor")
    page.goto(f"{books.base}/console/accounts/acme")
    assert "Current balance" in page.inner_text("main")
    posting = page.locator("main form[method=post]")
    assert posting.count() == 0  # nothing in the page writes
    assert page.get_by_role("link", name="Bills").count() == 0
    page.goto(f"{books.base}/console/accounts/acme/transactions")
    assert page.get_by_role("link", name="Receipt").count() == 0
    response = page.goto(f"{books.base}/console/bills")
    assert response.status == 403


def test_a_customer_login_sees_only_its_own_account(browser, books: Console):
    page = log_in(browser, books, "customer")
    assert page.get_by_role("link", name="My account").count() == 1
    page.goto(f"{books.base}/console/")
    assert "acme" in page.inner_text("main") and "globex" not in page.inner_text("main")
    response = page.goto(f"{books.base}/console/accounts/globex")
    assert response.status == 404
    response = page.goto(f"{books.base}/console/bills?account_id=globex")
    assert response.status == 404
    page.goto(f"{books.base}/console/bills")
    assert "globex" not in page.inner_text("main") and page.locator("tbody tr[data-bill]").count() == 2


def test_login_refuses_a_wrong_key_and_a_form_without_its_token(browser, books: Console):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{books.base}/console/login")
    page.get_by_label("API key").fill("ldk_not_a_key")
    page.get_by_role("button", name="Log in").click()
    assert page.locator("#api_key-error").inner_text() == "That API key is not valid."
    forged = requests.post(f"{books.base}/console/login", data={"api_key": books.keys["finance"]}, timeout=10,
                           allow_redirects=False)
    assert forged.status_code == 400 and "ledger_console" not in forged.headers.get("Set-Cookie", "")
    cookie = page.context.cookies()[0]
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"


def test_a_revoked_key_ends_its_sessions(browser, books: Console):
    issued = books.api("POST", "/v1/keys", json={"role": "finance", "name": "soon revoked"})
    books.keys["revoked"] = issued["secret"]
    page = log_in(browser, books, "revoked")
    assert page.url.endswith("/console/")
    books.api("POST", f"/v1/keys/{issued['key_id']}/revoke")
    page.goto(f"{books.base}/console/accounts/acme")
    assert "/console/login" in page.url


PAGES = ("/console/", "/console/accounts/acme", "/console/accounts/globex/transactions", "/console/bills",
         "/console/invoices", "/console/invoices/new?type=prepaid", "/console/invoices/new?type=postpaid")


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_fits_the_screen_and_is_kept_as_a_screenshot(browser, books: Console, width: int):
    page = log_in(browser, books, "finance", width=width, height=800)
    for path in PAGES:
        page.goto(f"{books.base}{path}")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow}px wider than a {width}px screen"
        name = re.sub(r"[^a-z]+", "-", path.removeprefix("/console/")).strip("-") or "customers"
        assert page.locator("main").count() == 1  # a console page, not an error of the API
        assert screenshot(page, f"{name}-{width}").stat().st_size > 5_000
    page.goto(f"{books.base}/console/login")
    screenshot(page, f"login-{width}")


def test_a_list_pages_on_and_refresh_keeps_the_filters(browser, books: Console):
    for n in range(27):
        books.api("POST", "/v1/accounts", json={"account_id": f"pg-{n:02d}", "billing_mode": "prepaid",
                                                "invoice_mode": "consolidated", "currency": "SGD"})
    page = log_in(browser, books, "finance")
    page.goto(f"{books.base}/console/?q=pg-")
    first = page.locator("table[aria-label=Customers] tbody tr").count()
    page.get_by_role("link", name="Next page").click()
    assert "/console/?q=pg-&after=" in page.url
    assert first + page.locator("table[aria-label=Customers] tbody tr").count() == 27
    page.goto(f"{books.base}/console/accounts/acme/transactions?type=Expense")
    page.get_by_role("link", name="Refresh").click()
    assert page.url.endswith("/console/accounts/acme/transactions?type=Expense")
    assert page.locator("table[aria-label='Balance details'] tbody tr").count() == 3
