"""Auditors' reads over HTTP: the event history and as-of figures."""

from __future__ import annotations


def test_events_list_in_order_with_payload_cause_and_link(app, key_for, client, acme):
    from tests.conftest import client_with_key

    finance_secret = key_for("finance")
    finance_key_id = finance_secret.split("_")[1]
    answered = client_with_key(app, finance_secret).post(
        "/v1/accounts/acme/recharges", json={"amount": "65.98", "reference": "PAY-1"},
        headers={"X-Api-Key-Id": "key-7", "X-Request-Id": "req-1"})  # a forged key id is ignored
    request_id = answered.headers["X-Request-Id"]
    assert len(request_id) == 32 and request_id != "req-1"
    client.post("/v1/accounts/acme/usage", json={"idempotency_key": "u", "product": "sms", "amount": "0.000009"})
    page = client.get("/v1/accounts/acme/events?limit=2").get_json()
    assert [(e["version"], e["type"]) for e in page["items"]] == [(1, "AccountOpened"), (2, "Recharged")]
    recharge = page["items"][1]
    assert recharge["payload"] == {"amount": "65.980000", "reference": "PAY-1", "method": "", "allocations": [],
                                  "purchaser_email": None}
    assert recharge["cause"] == {"kind": "http", "method": "POST", "path": "/v1/accounts/acme/recharges",
                                 "request_id": request_id, "client_request_id": "req-1",
                                 "api_key_id": finance_key_id, "role": "finance"}
    assert len(recharge["link"]) == 64
    rest = client.get(f"/v1/accounts/acme/events?cursor={page['next_cursor']}").get_json()
    assert [e["type"] for e in rest["items"]] == ["UsageRecorded"] and rest["next_cursor"] is None
    usage = client.get("/v1/accounts/acme/events?type=UsageRecorded").get_json()["items"]
    assert [e["payload"]["amount"] for e in usage] == ["0.000009"]
    assert client.get("/v1/accounts/acme/events?from=2099-01-01T00:00:00Z").get_json()["items"] == []
    assert client.get("/v1/accounts/acme/events?type=Nope").status_code == 400


def test_balance_and_details_as_of_a_position_or_a_time(client, acme):
    first = client.post("/v1/accounts/acme/recharges", json={"amount": "10"}).get_json()["balance"]
    client.post("/v1/accounts/acme/usage", json={"idempotency_key": "u", "product": "sms", "amount": "2.5"})
    assert client.get("/v1/accounts/acme/balance").get_json()["current_balance"] == "7.50"
    then = client.get(f"/v1/accounts/acme/balance?as_of={first['as_of']}").get_json()
    assert then == first
    recharged_at = client.get("/v1/accounts/acme/events?type=Recharged").get_json()["items"][0]["position"]
    by_position = client.get(f"/v1/accounts/acme/balance?as_of={recharged_at}").get_json()
    assert (by_position["current_balance"], by_position["version"]) == ("10.00", 2)
    rows = client.get(f"/v1/accounts/acme/transactions?as_of={first['as_of']}").get_json()["items"]
    assert [r["type"] for r in rows] == ["Recharge"]
    before = client.get("/v1/accounts/acme/balance?as_of=2000-01-01T00:00:00Z")
    assert (before.status_code, before.get_json()["error"]["code"]) == (404, "account_not_found")
    bad = client.get("/v1/accounts/acme/balance?as_of=yesterday")
    assert (bad.status_code, list(bad.get_json()["error"]["details"]["fields"])) == (400, ["as_of"])
