"""POST/GET /v1/invoices/reminders and the `ledger remind` / `ledger send-reminders` commands."""

from __future__ import annotations

import json

import pytest

from service import reminders
from tests.reminders.scenario import DUE_ON


def test_post_queues_and_answers_202_with_counts(client, invoices):
    body = {"idempotency_key": "req-1", "due_status": "overdue", "today": "2026-12-20"}

    first = client.post("/v1/invoices/reminders", json=body)
    again = client.post("/v1/invoices/reminders", json=body)

    assert first.status_code == 202, first.get_json()
    assert first.get_json() == {"matched": 3, "queued": 2, "already_queued": 0, "skipped_no_email": 1}
    assert again.status_code == 202
    assert again.get_json() == {"matched": 3, "queued": 0, "already_queued": 2, "skipped_no_email": 1}


@pytest.mark.parametrize(("body", "field"), [
    ({"idempotency_key": "k", "payment_status": "paid"}, "payment_status"),
    ({"idempotency_key": "k", "due_status": "late"}, "due_status"),
    ({"idempotency_key": "k", "today": "20-12-2026"}, "today"),
    ({"idempotency_key": "k", "period_from": "2026-11-01T00:00:00"}, "period_from"),  # no offset
    ({"due_status": "overdue"}, "idempotency_key"),
    ({"idempotency_key": "k", "status": "draft"}, "status"),  # reminders are for approved invoices only
])
def test_post_refuses_bad_filters_with_400(client, service, invoices, body, field):
    response = client.post("/v1/invoices/reminders", json=body)

    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_input" and error["message"]
    assert field in error["details"]["fields"]
    assert service.reminder_outbox.page(None, 10)[0] == []


def test_post_refuses_more_than_the_maximum(client, service, invoices, monkeypatch):
    monkeypatch.setattr(reminders, "MAX_REMINDERS_PER_REQUEST", 1)

    response = client.post("/v1/invoices/reminders", json={"idempotency_key": "k"})

    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "too_many_reminders"
    assert service.reminder_outbox.page(None, 10)[0] == []


def test_post_refuses_a_key_reused_with_other_filters(client, invoices):
    assert client.post("/v1/invoices/reminders", json={"idempotency_key": "k"}).status_code == 202

    response = client.post("/v1/invoices/reminders", json={"idempotency_key": "k", "account_id": "acme"})

    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "idempotency_key_reused"


def test_get_lists_the_outbox_by_status_page_by_page(client, invoices):
    client.post("/v1/invoices/reminders", json={"idempotency_key": "k"})

    first = client.get("/v1/invoices/reminders?status=pending&limit=1").get_json()
    second = client.get(f"/v1/invoices/reminders?status=pending&limit=1&cursor={first['next_cursor']}").get_json()

    items = first["items"] + second["items"]
    assert second["next_cursor"] is None
    assert sorted(i["amount_outstanding"] for i in items) == ["12.345678", "46.50"]  # exact, as strings
    assert {i["status"] for i in items} == {"pending"} and {i["due_on"] for i in items} == {DUE_ON}
    assert client.get("/v1/invoices/reminders?status=sent").get_json() == {"items": [], "next_cursor": None}
    bad = client.get("/v1/invoices/reminders?status=lost")
    assert bad.status_code == 400 and "status" in bad.get_json()["error"]["details"]["fields"]
    assert client.get("/v1/invoices/reminders?limit=100000").status_code == 400


def test_cli_queues_then_sends(run_cli, service, invoices, smtp, monkeypatch):
    monkeypatch.setenv("LEDGER_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("LEDGER_SMTP_FROM", "billing@ledger.test")
    args = ["remind", "--due-status", "overdue", "--today", "2026-12-20", "--payment-status", "partially_paid"]

    first = run_cli(*args)
    again = run_cli(*args)
    sent = run_cli("send-reminders", "--once")

    assert first.exit_code == 0, first.output
    queued = json.loads(first.stdout)
    assert (queued["queued"], queued["idempotency_key"]) == (1, json.loads(again.stdout)["idempotency_key"])
    assert json.loads(again.stdout)["queued"] == 0  # the derived key makes a same-day rerun a no-op
    assert sent.exit_code == 0, sent.output
    assert json.loads(sent.stdout)["sent"] == 1
    assert [r.recipients for r in smtp.received] == [["billing@acme.test", "cfo@acme.test"]]


def test_cli_refuses_bad_filters(run_cli, invoices):
    result = run_cli("remind", "--period-from", "2026-12-01", "--period-to", "2026-11-01")

    assert result.exit_code == 1
    assert "invalid_input" in result.output
