"""The HTTP API through Flask's test client, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from service.group_commit import GroupCommit, GroupCommitLimits
from tests.service.helpers import last_position


def test_open_read_and_change_an_account(client, acme):
    body = client.get("/v1/accounts/acme").get_json()
    assert body["payer"] == {"name": "Acme Pte Ltd", "emails": ["billing@acme.test"]}
    assert body["balance"]["usable_credits"] == "10.00"
    changed = client.patch("/v1/accounts/acme", json={"credit_limit": "25.5", "payer": {"tax_id": "T-1"}})
    assert changed.status_code == 200
    assert changed.get_json()["credit_limit"] == "25.50"
    assert changed.get_json()["payer"] == {"name": "Acme Pte Ltd", "emails": ["billing@acme.test"], "tax_id": "T-1"}


def test_money_flow_answers_with_the_figures_after_each_write(client, acme):
    recharge = client.post("/v1/accounts/acme/recharges", json={"amount": "65.98", "reference": "PAY-1", "method": "card"})
    assert recharge.status_code == 201
    assert recharge.get_json()["balance"]["amount_due"] == "65.98"
    usage = {"idempotency_key": "u-1", "product": "sms", "application_id": "app-9", "app_key": "AK1",
             "quantity": "1", "unit": "message", "unit_price": "0.000009", "occurred_at": "2026-11-01T10:00:00+08:00"}
    first = client.post("/v1/accounts/acme/usage", json=usage)
    assert first.status_code == 201
    assert first.get_json()["amount"] == "-0.000009"
    assert first.get_json()["balance"]["current_balance"] == "65.979991"
    again = client.post("/v1/accounts/acme/usage", json=usage)
    assert again.status_code == 200
    assert again.get_json()["replayed"] is True
    assert again.get_json()["transaction_no"] == first.get_json()["transaction_no"]
    hold = client.post("/v1/accounts/acme/reservations", json={"reservation_id": "call-1", "amount": "5", "expires_at": "2030-01-01T00:00:00Z"})
    assert hold.status_code == 201
    assert hold.get_json()["balance"]["reserved_credits"] == "5.00"
    assert client.get("/v1/accounts/acme/reservations").get_json()["items"][0]["reservation_id"] == "call-1"
    settled = client.post("/v1/accounts/acme/reservations/call-1/settle", json={"amount": "1.2", "product": "voice", "quantity": "2", "unit": "min"})
    assert settled.status_code == 200
    assert settled.get_json()["status"] == "settled"
    assert settled.get_json()["balance"]["reserved_credits"] == "0.00"
    charge = client.post("/v1/accounts/acme/charges", json={"idempotency_key": "c-1", "kind": "subscription", "description": "Pro plan", "amount": "9.99"})
    assert charge.status_code == 201
    balance = client.get("/v1/accounts/acme/balance").get_json()
    assert balance == {
        "account_id": "acme", "currency": "SGD", "usable_credits": "64.789991", "reserved_credits": "0.00",
        "expecting_invoice": "-11.190009", "amount_due": "65.98", "current_balance": "54.789991",
        "credit_limit": "10.00", "overdraft": "0.00", "as_of": balance["as_of"], "version": 6,
    }
    assert balance["as_of"].endswith("Z")


def test_transactions_filter_search_and_page(client, acme):
    client.post("/v1/accounts/acme/recharges", json={"amount": "100", "reference": "Wire 2026/11"})
    for i in range(5):
        client.post("/v1/accounts/acme/usage", json={"idempotency_key": f"u{i}", "product": "sms" if i % 2 else "whatsapp", "amount": "1"})
    page = client.get("/v1/accounts/acme/transactions?limit=2").get_json()
    assert [t["transaction_no"] for t in page["items"]] == ["acme:00000007", "acme:00000006"]
    seen = [t["transaction_no"] for t in page["items"]]
    while page["next_cursor"]:
        page = client.get(f"/v1/accounts/acme/transactions?limit=2&cursor={page['next_cursor']}").get_json()
        seen += [t["transaction_no"] for t in page["items"]]
    assert len(seen) == 6 == len(set(seen))
    sms = client.get("/v1/accounts/acme/transactions?type=Expense&product=sms").get_json()["items"]
    assert [t["product"] for t in sms] == ["sms", "sms"]
    wire = client.get("/v1/accounts/acme/transactions?q=wire").get_json()["items"]
    assert [(t["type"], t["amount"], t["balance_after"]) for t in wire] == [("Recharge", "100.00", "100.00")]
    future = client.get("/v1/accounts/acme/transactions?from=2099-01-01T00:00:00Z").get_json()["items"]
    assert future == []


TOO_PRECISE = {"amount": "1.0000001"}
BAD_REQUESTS = [
    # (method, path, json body, status, error code, field that must be named)
    ("post", "/v1/accounts", {"account_id": "x", "billing_mode": "prepaid"}, 400, "invalid_input", "currency"),
    ("post", "/v1/accounts", {"account_id": "bad id!", "billing_mode": "prepaid", "invoice_mode": "none", "currency": "SGD"}, 400, "invalid_input", "account_id"),
    ("post", "/v1/accounts", {"account_id": "acme", "billing_mode": "prepaid", "invoice_mode": "none", "currency": "SGD"}, 409, "account_exists", None),
    ("post", "/v1/accounts", {"account_id": "y", "billing_mode": "prepaid", "invoice_mode": "none", "currency": "XYZ"}, 400, "invalid_input", "currency"),
    ("post", "/v1/accounts/acme/recharges", TOO_PRECISE, 400, "invalid_input", "amount"),
    ("post", "/v1/accounts/acme/recharges", {"amount": "-5"}, 400, "invalid_input", None),
    ("post", "/v1/accounts/acme/recharges", {"amount": "abc"}, 400, "invalid_input", "amount"),
    ("post", "/v1/accounts/acme/recharges", {"amount": "1e20"}, 400, "invalid_input", "amount"),
    ("post", "/v1/accounts/acme/recharges", {"amount": "1", "surprise": True}, 400, "invalid_input", "surprise"),
    ("post", "/v1/accounts/acme/recharges", {"amount": "1", "currency": "USD"}, 422, "currency_mismatch", None),
    ("post", "/v1/accounts/acme/recharges", {"amount": "1", "currency": "usd"}, 400, "invalid_currency", None),
    ("post", "/v1/accounts/nobody/recharges", {"amount": "1"}, 404, "account_not_found", None),
    ("post", "/v1/accounts/acme/usage", {"product": "sms", "amount": "1"}, 400, "invalid_input", "idempotency_key"),
    ("post", "/v1/accounts/acme/usage", {"idempotency_key": "k", "product": "sms", "amount": "1", "unit_price": "1", "quantity": "1"}, 400, "invalid_input", "amount"),
    ("post", "/v1/accounts/acme/usage", {"idempotency_key": "k", "product": "sms", "unit_price": "0.1"}, 400, "invalid_input", "quantity"),
    ("post", "/v1/accounts/acme/usage", {"idempotency_key": "k", "product": "sms", "amount": "-1"}, 400, "invalid_input", None),
    ("post", "/v1/accounts/acme/usage", {"idempotency_key": "k", "product": "sms", "amount": "1", "occurred_at": "2026-11-01T10:00:00"}, 400, "invalid_input", "occurred_at"),
    ("post", "/v1/accounts/acme/charges", {"idempotency_key": "k", "kind": "gift", "amount": "1"}, 400, "invalid_input", "kind"),
    ("post", "/v1/accounts/acme/reservations", {"reservation_id": "r", "amount": "1000"}, 422, "insufficient_credits", None),
    ("post", "/v1/accounts/acme/reservations", {"reservation_id": "r", "amount": "0"}, 400, "invalid_input", None),
    ("post", "/v1/accounts/acme/reservations/none/settle", {"amount": "1", "product": "call"}, 404, "reservation_not_found", None),
    ("post", "/v1/accounts/acme/reservations/none/release", {"reason": "failed"}, 404, "reservation_not_found", None),
    ("post", "/v1/accounts/acme/reservations/none/release", {"reason": "bored"}, 400, "invalid_input", "reason"),
    ("patch", "/v1/accounts/acme", {}, 400, "invalid_input", "_schema"),
    ("patch", "/v1/accounts/acme", {"credit_limit": "-1"}, 400, "invalid_input", None),
    ("patch", "/v1/accounts/acme", {"billing_mode": "weekly"}, 400, "invalid_input", "billing_mode"),
    ("get", "/v1/accounts/acme/transactions?limit=501", None, 400, "invalid_input", "limit"),
    ("get", "/v1/accounts/acme/transactions?cursor=%21%21", None, 400, "invalid_input", None),
    ("get", "/v1/accounts/acme/transactions?type=Bogus", None, 400, "invalid_input", "type"),
    ("get", "/v1/accounts/nobody/balance", None, 404, "account_not_found", None),
    ("get", "/v1/nowhere", None, 404, "not_found", None),
    ("delete", "/v1/accounts/acme", None, 405, "method_not_allowed", None),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "code", "field"), BAD_REQUESTS,
                         ids=[f"{r[3]}-{r[4]}-{i}" for i, r in enumerate(BAD_REQUESTS)])
def test_bad_input_gets_the_documented_status_and_code_and_writes_nothing(client, acme, service, method, path, body, status, code, field):
    before = last_position(service)
    response = getattr(client, method)(path, json=body) if body is not None else getattr(client, method)(path)
    error = response.get_json()["error"]
    assert (response.status_code, error["code"]) == (status, code), error
    assert error["message"]
    if field:
        assert field in error["details"]["fields"]
    assert last_position(service) == before


def test_an_idempotency_key_reused_for_a_different_request_is_a_conflict(client, acme):
    client.post("/v1/accounts/acme/usage", json={"idempotency_key": "k", "product": "sms", "amount": "1"})
    response = client.post("/v1/accounts/acme/usage", json={"idempotency_key": "k", "product": "sms", "amount": "2"})
    assert (response.status_code, response.get_json()["error"]["code"]) == (409, "idempotency_key_reused")


def test_a_settled_reservation_cannot_be_settled_again(client, acme):
    client.post("/v1/accounts/acme/reservations", json={"reservation_id": "r", "amount": "2"})
    client.post("/v1/accounts/acme/reservations/r/settle", json={"amount": "1", "product": "call"})
    response = client.post("/v1/accounts/acme/reservations/r/settle", json={"amount": "1", "product": "call"})
    body = response.get_json()["error"]
    assert (response.status_code, body["code"], body["details"]["status"]) == (409, "reservation_closed", "settled")


def test_bodies_over_64_kib_are_refused_with_413(client, acme, service):
    before = last_position(service)
    padding = "x" * (64 * 1024)
    response = client.post("/v1/accounts/acme/recharges", json={"amount": "1", "reference": padding})
    assert (response.status_code, response.get_json()["error"]["code"]) == (413, "request_too_large")
    assert last_position(service) == before


def test_malformed_json_and_other_media_types_are_refused(client, acme):
    broken = client.post("/v1/accounts/acme/recharges", data="{amount: 1", content_type="application/json")
    assert (broken.status_code, broken.get_json()["error"]["code"]) == (400, "invalid_json")
    form = client.post("/v1/accounts/acme/recharges", data="amount=1", content_type="application/x-www-form-urlencoded")
    assert (form.status_code, form.get_json()["error"]["code"]) == (415, "unsupported_media_type")


def test_json_numbers_are_read_exactly_never_through_float(client, acme):
    response = client.post("/v1/accounts/acme/recharges", data='{"amount": 0.1}', content_type="application/json")
    client.post("/v1/accounts/acme/recharges", data='{"amount": 0.2}', content_type="application/json")
    assert response.status_code == 201
    assert client.get("/v1/accounts/acme/balance").get_json()["amount_due"] == "0.30"


def test_the_openapi_document_lists_every_endpoint(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    assert {"/v1/accounts", "/v1/accounts/{account_id}/balance", "/v1/accounts/{account_id}/usage",
            "/v1/accounts/{account_id}/reservations/{reservation_id}/settle",
            "/v1/accounts/{account_id}/transactions"} <= set(paths)


def test_a_committed_write_answers_with_its_own_figures_when_the_read_model_cannot_catch_up(client, acme, service,
                                                                                           monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("read model unavailable")

    # Breaks the projection itself: both its write along with the append (PostgreSQL) and
    # the catch-up after it fail.
    monkeypatch.setattr(service.projector.projection, "process_event", broken)
    posted = client.post("/v1/accounts/acme/recharges", json={"amount": "12.5"})
    assert posted.status_code == 201, posted.get_json()
    assert posted.get_json()["balance"]["amount_due"] == "12.50"
    assert posted.get_json()["balance"]["version"] == 2
    assert service.catch_up_failures == 1
    monkeypatch.undo()
    service.projector.catch_up()  # applied later, by whoever catches up next
    assert client.get("/v1/accounts/acme/balance").get_json()["amount_due"] == "12.50"


@pytest.mark.parametrize("path, body, balance_field", [
    ("/v1/accounts/acme/recharges", {"amount": "20", "reference": "PAY-9"}, "amount_due"),
    ("/v1/accounts/acme/usage", {"product": "sms", "amount": "1.5"}, "expecting_invoice"),
    ("/v1/accounts/acme/charges", {"kind": "service", "description": "setup", "amount": "3"}, "expecting_invoice"),
])
def test_a_money_moving_retry_with_the_same_key_lands_once(client, acme, path, body, balance_field):
    headers = {"Idempotency-Key": "retry-1"}
    first = client.post(path, json=body, headers=headers)
    assert first.status_code == 201, first.get_json()
    again = client.post(path, json=body, headers=headers)
    assert again.status_code == 200 and again.get_json()["replayed"] is True
    assert again.get_json()["transaction_no"] == first.get_json()["transaction_no"]
    in_body = client.post(path, json={**body, "idempotency_key": "retry-1"})
    assert in_body.status_code == 200  # the header and the body field are one key
    other = client.post(path, json={**body, "amount": "99"}, headers=headers)
    assert (other.status_code, other.get_json()["error"]["code"]) == (409, "idempotency_key_reused")
    rows = client.get("/v1/accounts/acme/transactions").get_json()["items"]
    assert len(rows) == 1
    differ = client.post(path, json={**body, "idempotency_key": "a"}, headers={"Idempotency-Key": "b"})
    assert differ.status_code == 400


def test_usage_without_any_key_is_refused(client, acme):
    refused = client.post("/v1/accounts/acme/usage", json={"product": "sms", "amount": "1"})
    assert (refused.status_code, list(refused.get_json()["error"]["details"]["fields"])) == (400, ["idempotency_key"])


def test_liveness_never_waits_for_the_database_and_readiness_says_unavailable_at_once(client, service, monkeypatch):
    import time

    import psycopg

    def gone():
        raise psycopg.OperationalError("connection refused")

    def hanging():
        time.sleep(5)
        return 0

    monkeypatch.setattr(service.commands.recorder, "max_notification_id", gone)
    assert client.get("/livez").status_code == 200
    down = client.get("/readyz")
    assert down.status_code == 503 and "not reachable" in down.get_json()["reason"]
    assert down.headers["Retry-After"]
    monkeypatch.setattr(service.commands.recorder, "max_notification_id", hanging)
    started = time.monotonic()
    slow = client.get("/readyz")
    assert slow.status_code == 503 and time.monotonic() - started < 3.5
    assert "did not answer within" in slow.get_json()["reason"]


def test_a_full_write_queue_answers_503_with_retry_after_and_writes_nothing(app, client, acme, service):
    """Back-pressure over HTTP: with one write held in the lead and one queued behind it
    (LEDGER_GROUP_COMMIT_MAX_QUEUED=1), the next money movement is refused at once."""
    entered, release = threading.Event(), threading.Event()

    def held(command: Any) -> Any:
        entered.set()
        release.wait(10)
        return service._write_alone(command)

    service.group_commit = GroupCommit(service.commands, held, service._caught_up, GroupCommitLimits(1, 1, 0))
    answers: list[int] = []

    def post(key: str) -> None:
        other = app.test_client()
        other.environ_base.update(client.environ_base)
        answers.append(other.post("/v1/accounts/acme/usage", json={"idempotency_key": key, "product": "sms",
                                                                   "amount": "1"}).status_code)

    first = threading.Thread(target=post, args=("q-1",))
    first.start()
    assert entered.wait(10)
    second = threading.Thread(target=post, args=("q-2",))
    second.start()
    while len(service.group_commit._queue) < 1:
        threading.Event().wait(0.01)
    refused = client.post("/v1/accounts/acme/usage", json={"idempotency_key": "q-3", "product": "sms", "amount": "1"})
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert refused.get_json()["error"]["code"] == "overloaded"
    release.set()
    first.join(10), second.join(10)
    assert sorted(answers) == [201, 201]
    assert len(client.get("/v1/accounts/acme/transactions").get_json()["items"]) == 2
    retried = client.post("/v1/accounts/acme/usage", json={"idempotency_key": "q-3", "product": "sms", "amount": "1"})
    assert retried.status_code == 201  # not a replay: the refused write left nothing under its key
