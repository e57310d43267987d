"""low_balance_threshold over HTTP: shown, validated (400), changed all-or-none by PATCH."""

from __future__ import annotations


def test_opening_with_a_threshold_shows_it_and_a_negative_one_is_a_400(client):
    bad = client.post("/v1/accounts", json={"account_id": "neg", "billing_mode": "prepaid", "invoice_mode": "none",
                                            "currency": "SGD", "low_balance_threshold": "-5"})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_input"
    assert client.get("/v1/accounts/neg").status_code == 404
    ok = client.post("/v1/accounts", json={"account_id": "low", "billing_mode": "prepaid", "invoice_mode": "none",
                                           "currency": "SGD", "low_balance_threshold": "12.5"})
    assert ok.status_code == 201 and ok.get_json()["low_balance_threshold"] == "12.50"


def test_patch_validates_applies_all_or_none_and_null_turns_it_off(client, acme):
    assert client.get(f"/v1/accounts/{acme}").get_json()["low_balance_threshold"] is None
    negative = client.patch(f"/v1/accounts/{acme}", json={"low_balance_threshold": "-0.01"})
    assert negative.status_code == 400
    too_precise = client.patch(f"/v1/accounts/{acme}", json={"low_balance_threshold": "1.0000001"})
    assert too_precise.status_code == 400
    client.post(f"/v1/accounts/{acme}/recharges", json={"amount": "10"})  # amount due 10: mode none refused
    refused = client.patch(f"/v1/accounts/{acme}", json={"low_balance_threshold": "3", "invoice_mode": "none"})
    assert refused.status_code == 422 and refused.get_json()["error"]["code"] == "invoice_mode_change_blocked"
    assert client.get(f"/v1/accounts/{acme}").get_json()["low_balance_threshold"] is None
    changed = client.patch(f"/v1/accounts/{acme}", json={"low_balance_threshold": "3", "credit_limit": "20"})
    assert changed.status_code == 200
    assert (changed.get_json()["low_balance_threshold"], changed.get_json()["credit_limit"]) == ("3.00", "20.00")
    off = client.patch(f"/v1/accounts/{acme}", json={"low_balance_threshold": None})
    assert off.status_code == 200 and off.get_json()["low_balance_threshold"] is None
