"""Payer profile (issue 12, item 7): invoice addresses and payment methods, and no card numbers."""

from __future__ import annotations

import pytest

from tests.api.test_finance_fixes import open_account


def test_addresses_and_payment_methods_with_one_default_each(client):
    open_account(client, "acme", "SGD")
    hq = client.put("/v1/accounts/acme/payer-profile/addresses/hq", json={
        "label": "Head office", "organization": "Acme Pte Ltd", "line1": "1 Raffles Place", "city": "Singapore",
        "postal_code": "048616", "country": "SG", "tax_id": "201912345K"})
    assert hq.status_code == 200, hq.get_json()
    client.put("/v1/accounts/acme/payer-profile/addresses/ap", json={"label": "AP", "line1": "2 Shenton Way",
                                                                     "country": "SG"})
    profile = client.get("/v1/accounts/acme/payer-profile").get_json()
    assert [(a["address_id"], a["default"]) for a in profile["addresses"]] == [("hq", True), ("ap", False)]
    moved = client.put("/v1/accounts/acme/payer-profile/addresses/ap", json={"city": "Singapore", "default": True})
    assert [(a["address_id"], a["default"], a["city"]) for a in moved.get_json()["addresses"]] == [
        ("hq", False, "Singapore"), ("ap", True, "Singapore")]
    card = client.put("/v1/accounts/acme/payer-profile/payment-methods/card-1", json={
        "provider": "stripe", "token": "pm_1Nabc", "brand": "visa", "last4": "4242", "exp_month": 12,
        "exp_year": 2028})
    assert card.status_code == 200, card.get_json()
    edited = client.put("/v1/accounts/acme/payer-profile/payment-methods/card-1", json={"exp_year": 2030})
    [method] = edited.get_json()["payment_methods"]
    assert (method["last4"], method["exp_year"], method["default"]) == ("4242", 2030, True)
    left = client.delete("/v1/accounts/acme/payer-profile/addresses/ap").get_json()
    assert [(a["address_id"], a["default"]) for a in left["addresses"]] == [("hq", True)]  # the default moves on
    missing = client.put("/v1/accounts/acme/payer-profile/payment-methods/card-2", json={"brand": "visa"})
    assert (missing.status_code, missing.get_json()["error"]["code"]) == (400, "invalid_input")


@pytest.mark.parametrize("path, body", [
    ("/v1/accounts/acme/payer-profile/payment-methods/card-9", {"provider": "stripe", "token": "4111111111111111"}),
    ("/v1/accounts/acme/payer-profile/payment-methods/card-9", {"card_number": "4111 1111 1111 1111"}),
    ("/v1/accounts/acme/payer-profile/addresses/x", {"line2": "card 5500-0055-5555-5559"}),
])
def test_a_card_number_anywhere_is_refused_and_nothing_is_written(client, path, body):
    open_account(client, "acme", "SGD")
    refused = client.put(path, json=body)
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (400, "card_number_refused")
    profile = client.get("/v1/accounts/acme/payer-profile").get_json()
    assert profile["addresses"] == [] and profile["payment_methods"] == []


def test_payer_details_refuse_card_numbers_too(client):
    opened = client.post("/v1/accounts", json={"account_id": "x", "invoice_mode": "consolidated", "currency": "SGD",
                                               "payer": {"name": "Pay 4111111111111111"}})
    assert (opened.status_code, opened.get_json()["error"]["code"]) == (400, "card_number_refused")
    open_account(client, "acme", "SGD")
    patched = client.patch("/v1/accounts/acme", json={"payer": {"address": "378282246310005"}})
    assert (patched.status_code, patched.get_json()["error"]["code"]) == (400, "card_number_refused")
    phone = client.patch("/v1/accounts/acme", json={"payer": {"address": "+65 6123 4567, ref 4111111111111112"}})
    assert phone.status_code == 200, phone.get_json()  # digits that fail the Luhn check are no card
