"""Test clocks (issue 15, item 14): sandbox time for attached accounts, through HTTP on
SQLite and PostgreSQL. The real clock here is the suite's FakeClock (2026-11-26)."""

from __future__ import annotations

from tests.api.test_finance_fixes import open_account, pdf_text
from tests.conftest import client_with_key


def made_clock(client, frozen_time="2027-03-10T12:00:00Z", **extra):
    answer = client.post("/v1/test-clocks", json={"frozen_time": frozen_time, **extra})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def advance(client, clock_id, frozen_time):
    answer = client.post(f"/v1/test-clocks/{clock_id}/advance", json={"frozen_time": frozen_time})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def test_an_attached_account_lives_on_its_clock_and_advancing_runs_its_chores_in_order(client, service):
    clock = made_clock(client, id="clock_spring")
    assert (clock["id"], clock["frozen_time"], clock["account_ids"]) == (
        "clock_spring", "2027-03-10T12:00:00.000000Z", [])
    open_account(client, "sandbox", "SGD", billing_mode="postpaid", credit_limit="500",
                 drafts_need_approval=False, payment_terms_days=10, test_clock_id="clock_spring")
    open_account(client, "real", "SGD", billing_mode="postpaid", credit_limit="500")
    account = client.get("/v1/accounts/sandbox").get_json()
    assert (account["test_clock_id"], account["opened_at"][:10]) == ("clock_spring", "2027-03-10")
    assert client.get("/v1/accounts/real").get_json()["test_clock_id"] is None

    used = client.post("/v1/accounts/sandbox/usage", json={"idempotency_key": "u1", "product": "sms", "amount": "7"})
    assert used.status_code == 201, used.get_json()
    [row] = client.get("/v1/accounts/sandbox/transactions").get_json()["items"]
    assert row["occurred_at"].startswith("2027-03-10T12:00")  # the clock's now, not the real one
    held = client.post("/v1/accounts/sandbox/reservations", json={
        "reservation_id": "h1", "amount": "5", "expires_at": "2027-03-20T00:00:00Z"})
    assert held.status_code == 201, held.get_json()  # in the future of the clock (not of real time: 2026)
    prediction = client.get("/v1/accounts/sandbox/invoices/prediction").get_json()
    assert prediction["as_of"].startswith("2027-03-10") and prediction["usage_so_far"] == "7.00"
    future = client.post("/v1/accounts/sandbox/cycles/close", json={"as_of": "2027-04-02T00:00:00Z"})
    assert future.get_json()["error"]["code"] == "close_in_future"  # the clock's now decides "future"

    done = advance(client, "clock_spring", "2027-05-15T00:00:00Z")
    assert done["frozen_time"] == "2027-05-15T00:00:00.000000Z" and done["account_ids"] == ["sandbox"]
    assert done["expired"] == {"sandbox": ["h1"]}
    [april] = done["invoices"]["sandbox"]  # March's cycle; April had no usage to invoice
    invoice = client.get(f"/v1/invoices/{april}").get_json()
    assert (invoice["issue_date"], invoice["due_on"]) == ("2027-04-01", "2027-04-11")  # issued when the cycle ended
    assert invoice["total"] == "7.00" and invoice["due_status"] == "overdue"  # by the clock's today
    assert "Overdue" in pdf_text(client.get(f"/v1/invoices/{april}.pdf"))
    assert client.get("/v1/accounts/sandbox/reservations").get_json()["items"] == []
    assert client.get("/v1/accounts/sandbox/balance").get_json()["reserved_credits"] == "0.00"
    assert client.get("/v1/accounts/real/invoices/future").get_json()["period_start"].startswith("2026-11-01")

    # the audit trail keeps the business time beside the real one
    events = client.get("/v1/accounts/sandbox/events").get_json()["items"]
    closed = [e for e in events if e["type"] == "InvoiceApproved"][0]
    assert closed["cause"]["business_time"].startswith("2027-04-01T00:00")


def test_clocks_move_forward_only_and_only_admins_use_them(client, app, key_for):
    made_clock(client, id="clock_a")
    back = client.post("/v1/test-clocks/clock_a/advance", json={"frozen_time": "2027-03-10T12:00:00Z"})
    assert (back.status_code, back.get_json()["error"]["code"]) == (422, "test_clock_refused")
    far = client.post("/v1/test-clocks/clock_a/advance", json={"frozen_time": "2030-03-10T12:00:00Z"})
    assert (far.status_code, far.get_json()["error"]["code"]) == (422, "test_clock_refused")
    assert client.post("/v1/test-clocks", json={"frozen_time": "2027-01-01T00:00:00Z", "id": "clock_a"}
                       ).status_code == 400  # exists already
    missing = client.post("/v1/accounts", json={"account_id": "x", "invoice_mode": "consolidated", "currency": "SGD",
                                                "test_clock_id": "clock_none"})
    assert (missing.status_code, missing.get_json()["error"]["code"]) == (404, "test_clock_not_found")
    assert client.get("/v1/accounts/x").status_code == 404  # nothing written
    finance = client_with_key(app, key_for("finance"))
    assert finance.post("/v1/test-clocks", json={"frozen_time": "2027-01-01T00:00:00Z"}).status_code == 403
    assert finance.post("/v1/test-clocks/clock_a/advance", json={"frozen_time": "2027-04-01T00:00:00Z"}
                        ).status_code == 403
    open_account(client, "real", "SGD")
    patched = client.patch("/v1/accounts/real", json={"test_clock_id": "clock_a"})
    assert (patched.status_code, patched.get_json()["error"]["code"]) == (400, "invalid_input")  # at opening only
    assert client.get("/v1/accounts/real").get_json()["test_clock_id"] is None
