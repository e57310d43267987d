"""An account's other pages in headless Chromium: subscriptions and orders as the API made
them; recurring invoices read by finance and started, stopped and changed by an admin."""

from __future__ import annotations

import io
from decimal import Decimal

import openpyxl
import pytest
from pypdf import PdfReader

from tests.console.conftest import Console, log_in, screenshot

pytestmark = [pytest.mark.postgres, pytest.mark.server]


@pytest.fixture(scope="module")
def books(console: Console) -> Console:
    console.api("POST", "/v1/accounts", json={
        "account_id": "umbrella", "billing_mode": "prepaid", "invoice_mode": "consolidated", "currency": "SGD",
        "credit_limit": "500", "payer": {"name": "Umbrella", "emails": ["ap@umbrella.test"]}})
    console.api("POST", "/v1/plans", json={"plan_id": "chat-pro", "kind": "package", "name": "Chat Pro",
                                           "period": "monthly", "currency": "SGD", "price": "30"})
    console.api("POST", "/v1/plans", json={"plan_id": "chat-max", "kind": "package", "name": "Chat Max",
                                           "period": "monthly", "currency": "SGD", "price": "60"})
    console.api("POST", "/v1/plans", json={"plan_id": "ai-assistant", "kind": "addon", "name": "AI assistant",
                                           "period": "monthly", "currency": "SGD", "price": "9"})
    console.api("POST", "/v1/accounts/umbrella/subscriptions", json={"plan_id": "chat-pro"})
    console.api("POST", "/v1/accounts/umbrella/orders", json={
        "kind": "cloud_phone", "product": "Cloud phone Android 12", "unit_price": "12.5", "quantity": "2",
        "resource_id": "cp-7"})
    return console


def test_subscriptions_and_orders_show_what_the_api_made(browser, books: Console):
    page = log_in(browser, books, "auditor")
    page.goto(f"{books.base}/console/accounts/umbrella")
    page.get_by_role("link", name="Subscriptions").click()
    row = page.get_by_role("table", name="Subscriptions").locator("tbody tr")
    assert row.count() == 1 and "Chat Pro" in row.inner_text() and "30.00 SGD" in row.inner_text()
    page.get_by_role("link", name="Orders").click()
    orders = page.get_by_role("table", name="Orders").locator("tbody tr")
    assert orders.count() == 1 and "cp-7" in orders.inner_text() and "25.00 SGD" in orders.inner_text()
    page.get_by_label("Status").select_option("completed")
    page.get_by_role("button", name="Search").click()
    assert "status=completed" in page.url and "No order." in orders.inner_text()
    assert page.get_by_role("link", name="Recurring invoices").count() == 0  # an auditor's tabs


def test_finance_reads_recurring_settings_and_an_admin_stops_and_changes_them(browser, books: Console):
    finance = log_in(browser, books, "finance")
    finance.goto(f"{books.base}/console/accounts/umbrella/recurring")
    assert finance.locator("[data-state=cycle]").inner_text() == "running"
    assert finance.locator("main form[method=post]").count() == 0  # finance reads; admins change

    admin = log_in(browser, books, "admin")
    admin.goto(f"{books.base}/console/accounts/umbrella/recurring")
    admin.get_by_role("button", name="Stop the cycle").click()
    assert admin.locator("[data-state=cycle]").inner_text() == "stopped"
    assert books.api("GET", "/v1/accounts/umbrella")["cycle_running"] is False
    admin.get_by_label("Payment terms (days)").fill("999999")
    admin.get_by_role("button", name="Save settings").click()
    assert admin.locator("#payment_terms_days-error").is_visible()
    admin.get_by_label("Payment terms (days)").fill("30")
    admin.get_by_role("button", name="Save settings").click()
    assert "settings saved" in admin.inner_text("main")
    assert books.api("GET", "/v1/accounts/umbrella")["payment_terms_days"] == 30
    admin.get_by_role("button", name="Start the cycle").click()
    assert books.api("GET", "/v1/accounts/umbrella")["cycle_running"] is True
    for width in (1280, 390):
        admin.set_viewport_size({"width": width, "height": 800})
        for path in ("recurring", "subscriptions", "orders"):
            admin.goto(f"{books.base}/console/accounts/umbrella/{path}")
            assert admin.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
            screenshot(admin, f"accounts-umbrella-{path}-{width}")


def test_a_package_change_is_previewed_then_posts_what_the_preview_showed(browser, books: Console):
    page = log_in(browser, books, "finance")
    page.goto(f"{books.base}/console/accounts/umbrella/subscriptions")
    row = page.get_by_role("table", name="Subscriptions").locator("tbody tr").first
    row.get_by_text("Actions").click()
    row.get_by_role("link", name="Change package").click()
    page.get_by_label("New package").select_option("chat-max")
    page.get_by_role("button", name="Preview").click()
    moves = page.get_by_role("table", name="What the change posts").locator("tbody tr")
    shown = [Decimal(moves.nth(n).locator("td").nth(2).inner_text().split()[0]) for n in range(moves.count())]
    assert len(shown) == 2 and shown[0] > 0 > shown[1]  # the unused days of Chat Pro back, Chat Max's charged
    before = Decimal(books.api("GET", "/v1/accounts/umbrella/balance")["current_balance"])
    page.get_by_role("button", name="Change package").click()
    assert "package changed to chat-max" in page.inner_text("main")
    after = Decimal(books.api("GET", "/v1/accounts/umbrella/balance")["current_balance"])
    assert after - before == sum(shown)
    assert "Chat Max" in page.get_by_role("table", name="Subscriptions").inner_text()


def test_an_add_on_is_previewed_and_bought_and_a_new_subscription_made(browser, books: Console):
    page = log_in(browser, books, "finance")
    page.goto(f"{books.base}/console/accounts/umbrella/subscriptions")
    row = page.get_by_role("table", name="Subscriptions").locator("tbody tr").first
    row.get_by_text("Actions").click()
    row.get_by_role("link", name="Add an add-on").click()
    page.get_by_label("Add-on").select_option("ai-assistant")
    page.get_by_label("Quantity").fill("2")
    page.get_by_role("button", name="Preview").click()
    charged = page.get_by_role("table", name="What the change posts").locator("tbody tr td").nth(2).inner_text()
    before = Decimal(books.api("GET", "/v1/accounts/umbrella/balance")["current_balance"])
    page.get_by_role("button", name="Add the add-on").click()
    assert "add-on ai-assistant added" in page.inner_text("main")
    after = Decimal(books.api("GET", "/v1/accounts/umbrella/balance")["current_balance"])
    assert after - before == Decimal(charged.split()[0]) < 0
    assert "AI assistant × 2" in page.get_by_role("table", name="Subscriptions").inner_text()

    page.get_by_label("Package").select_option("chat-pro")
    page.get_by_label("Subscriber").fill("Ann Lee")
    page.get_by_role("button", name="Subscribe").click()
    assert "Subscribed to chat-pro." in page.inner_text("main")
    assert len(books.api("GET", "/v1/accounts/umbrella/subscriptions")["items"]) == 2


def test_orders_filter_reset_and_export(browser, books: Console):
    page = log_in(browser, books, "finance")
    page.goto(f"{books.base}/console/accounts/umbrella/orders")
    page.get_by_label("Cloud phone id").fill("cp-7")
    page.get_by_label("Created from").fill("2020-01-01")
    page.get_by_role("button", name="Search").click()
    assert "resource_id=cp-7" in page.url
    assert page.get_by_role("table", name="Orders").locator("tbody tr").count() == 1
    with page.expect_download() as export:
        page.get_by_role("link", name="Export").click()
    with open(export.value.path(), "rb") as file:
        rows = list(openpyxl.load_workbook(io.BytesIO(file.read()), read_only=True).active.iter_rows(values_only=True))
    assert len(rows) == 2 and "cp-7" in rows[1]
    page.get_by_role("link", name="Reset").click()
    assert page.url.endswith("/console/accounts/umbrella/orders")


def test_finance_cancels_a_subscription_at_period_end_and_pays_an_order_from_the_balance(browser, books: Console):
    books.api("POST", "/v1/accounts/umbrella/recharges", json={"amount": "100", "reference": "R1", "method": "card"})
    page = log_in(browser, books, "finance")
    page.goto(f"{books.base}/console/accounts/umbrella/subscriptions")
    row = page.locator("tbody tr[data-subscription]", has_text="Ann Lee")
    sub = row.get_attribute("data-subscription")
    row.get_by_text("Actions").click()
    row.get_by_role("button", name="Cancel at period end").click()
    assert "cancel at period end" in page.inner_text("main")
    subscription = books.api("GET", f"/v1/accounts/umbrella/subscriptions/{sub}")
    assert subscription["cancel_at_period_end"] is True

    page.goto(f"{books.base}/console/accounts/umbrella/orders")
    before = books.api("GET", "/v1/accounts/umbrella/balance")["current_balance"]
    row = page.get_by_role("table", name="Orders").locator("tbody tr").first
    row.get_by_text("Actions").click()
    row.get_by_role("button", name="Pay from the balance").click()
    assert "paid." in page.inner_text("main")
    after = books.api("GET", "/v1/accounts/umbrella/balance")["current_balance"]
    assert Decimal(before) - Decimal(after) == Decimal("25.00")
    row = page.get_by_role("table", name="Orders").locator("tbody tr").first
    assert "completed" in row.inner_text()
    row.get_by_text("Actions").click()
    with page.expect_download() as receipt:
        row.get_by_role("link", name="Receipt").click()
    assert "25.00" in "".join(p.extract_text() for p in PdfReader(receipt.value.path()).pages)
