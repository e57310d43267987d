"""The console's rules without a browser (both databases): every page declares who may open
it and an undeclared one is refused to all; a login sees only its scope; no open redirect;
security headers on every answer; a bad filter is a 400 page, never a 500."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask

from console.access import access_of
from console.queries import PAGE_ROWS
from entrypoints.web import create_web
from ledger_core.commands import IssueKey, OpenAccount, Recharge
from projections.rows import EventFilter, TransactionFilter
from service.history import account_events
from service.ledger_service import LedgerService


@pytest.fixture
def web(service: LedgerService) -> Any:
    for account in ("acme", "globex"):
        service.handle(OpenAccount(account_id=account, currency="SGD", billing_mode="prepaid",
                                   invoice_mode="consolidated", payer={"name": account.title()}))
    service.handle(Recharge("globex", amount="5", reference="G1", method="card"))
    return create_web(service=service)


def browser_for(web: Any, service: LedgerService, role: str, *accounts: str) -> Any:
    """A test client with a console session of a new key of ``role`` (scoped to ``accounts``)."""
    client = web.console.test_client()
    secret = service.commands.handle(IssueKey(role, accounts=accounts or None)).secret
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))[1]
    answer = client.post("/login", data={"api_key": secret, "csrf_token": token})
    assert answer.status_code == 302
    return client


def test_every_page_declares_who_may_open_it(web: Any):
    console: Flask = web.console
    for rule in console.url_map.iter_rules():
        assert access_of(console, rule.endpoint) is not None, rule.rule


def test_a_page_without_a_declaration_is_refused_to_everyone(web: Any, service: LedgerService):
    web.console.add_url_rule("/undeclared", "undeclared", lambda: "secret figures")
    client = browser_for(web, service, "admin")
    assert client.get("/undeclared").status_code == 403


def test_without_a_session_every_page_sends_to_the_login(web: Any):
    answer = web.console.test_client().get("/accounts/acme?x=1")
    assert answer.status_code == 302 and "/login?next=/accounts/acme?x%3D1" in answer.headers["Location"]


def test_a_scoped_login_sees_only_its_accounts(web: Any, service: LedgerService):
    client = browser_for(web, service, "finance", "acme")
    assert client.get("/accounts/acme").status_code == 200
    for path in ("/accounts/globex", "/accounts/globex/transactions", "/accounts/globex/transactions/export.xlsx",
                 "/bills?account_id=globex"):
        assert client.get(path).status_code == 404, path
    globex_recharge = service.view.transactions(TransactionFilter(account_id="globex"), 10).rows[0]
    assert client.get(f"/receipts/{globex_recharge.transaction_no}.pdf").status_code == 404
    customers = client.get("/").get_data(as_text=True)
    assert "acme" in customers and "globex" not in customers


def test_login_never_redirects_off_the_console(web: Any, service: LedgerService):
    client = web.console.test_client()
    secret = service.commands.handle(IssueKey("finance")).secret
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True))[1]
    answer = client.post("/login", data={"api_key": secret, "csrf_token": token, "next": "//evil.example/x"})
    assert answer.headers["Location"] == "/"


def test_answers_carry_the_security_headers(web: Any, service: LedgerService):
    client = browser_for(web, service, "finance")
    answer = client.get("/")
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["X-Frame-Options"] == "DENY" and answer.headers["Cache-Control"] == "no-store"
    cookie = web.console.test_client().post("/login").headers.get("Set-Cookie", "")
    assert "ledger_console" not in cookie  # a form without its CSRF token makes no session


@pytest.mark.parametrize("query", ["cycle=2026-13", "status=Unknown", "before=-1", "cycle=%00", "product=" + "x" * 500])
def test_a_bad_filter_is_a_400_page_naming_the_field(web: Any, service: LedgerService, query: str):
    client = browser_for(web, service, "finance")
    answer = client.get(f"/bills?{query}")
    assert answer.status_code == 400
    assert 'class="field-error"' in answer.get_data(as_text=True)


def test_a_write_from_a_page_records_who_made_it(web: Any, service: LedgerService):
    client = browser_for(web, service, "admin")
    key_id = service.commands.api_keys()[-1].key_id
    token = re.search(r'name="csrf_token" value="([^"]+)"',
                      client.get("/accounts/acme/recurring").get_data(as_text=True))[1]
    answer = client.post("/accounts/acme/recurring", data={"csrf_token": token, "action": "stop"})
    assert answer.status_code == 302
    last = account_events(service, EventFilter(account_id="acme"), 50)[0][-1]
    assert last.cause["kind"] == "console" and last.cause["api_key_id"] == key_id and last.cause["role"] == "admin"
    assert last.cause["path"] == "/accounts/acme/recurring" and last.cause["request_id"]


def test_a_form_without_its_csrf_token_writes_nothing(web: Any, service: LedgerService):
    client = browser_for(web, service, "admin")
    answer = client.post("/accounts/acme/recurring", data={"action": "stop"})
    assert answer.status_code == 400
    assert service.account_row("acme").billing_settings["cycle_running"] is True


def test_lists_page_through_every_row(web: Any, service: LedgerService):
    for n in range(PAGE_ROWS + 3):
        service.handle(OpenAccount(account_id=f"page-{n:03d}", currency="SGD", billing_mode="prepaid",
                                   invoice_mode="consolidated"))
    client = browser_for(web, service, "finance")
    seen, url = [], "/?q=page-"
    while url:
        html = client.get(url).get_data(as_text=True)
        seen += re.findall(r'>(page-\d{3})</a>', html)
        found = re.search(r'rel="next" href="([^"]+)"', html)
        url = found[1].replace("&amp;", "&") if found else None
    assert seen == [f"page-{n:03d}" for n in range(PAGE_ROWS + 3)]


def test_a_login_scoped_to_an_account_sends_no_reminders(web: Any, service: LedgerService):
    """As in the API, reminders go out from a login that sees every account."""
    client = browser_for(web, service, "finance", "acme")
    page = client.get("/invoices").get_data(as_text=True)
    assert "Send reminders" not in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    answer = client.post("/invoices/reminders", data={"csrf_token": token, "form_key": "k1"})
    assert answer.status_code == 403
    assert service.reminder_outbox.page(None, 10, None)[0] == []


def test_a_failure_inside_a_page_is_a_console_error_page(web: Any, service: LedgerService, monkeypatch):
    client = browser_for(web, service, "finance")
    monkeypatch.setattr("console.accounts.spending", lambda bills: 1 / 0)
    answer = client.get("/accounts/acme")
    assert answer.status_code == 500 and "could not complete the request" in answer.get_data(as_text=True)
    assert "Traceback" not in answer.get_data(as_text=True)
