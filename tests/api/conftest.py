from __future__ import annotations

import pytest


@pytest.fixture
def acme(client):
    response = client.post("/v1/accounts", json={
        "account_id": "acme", "billing_mode": "prepaid", "invoice_mode": "consolidated", "currency": "SGD",
        "credit_limit": "10", "payer": {"name": "Acme Pte Ltd", "emails": ["billing@acme.test"]},
    })
    assert response.status_code == 201, response.get_json()
    return "acme"
