"""Identity and roles, walked from the served OpenAPI document: every operation declares
its roles, refuses callers without a key (401) or with another role (403), and a key
scoped to one account never sees another account's objects (404) or rows."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ledger_core.access import Role
from tests.conftest import client_with_key

NON_ADMIN = [Role.SERVICE.value, Role.FINANCE.value, Role.AUDITOR.value]
OBJECT_PARAMETERS = {"account_id", "invoice_id", "bill_no", "transaction_no", "reservation_id", "key_id",
                     "subscription_id", "order_id"}


@pytest.fixture
def world(client, service) -> dict[str, str]:
    """Objects of every kind, all of account "acme"; account "other" has nothing."""
    for account in ("acme", "other"):
        opened = client.post("/v1/accounts", json={"account_id": account, "billing_mode": "prepaid",
                                                   "invoice_mode": "consolidated", "currency": "SGD"})
        assert opened.status_code == 201
    recharge = client.post("/v1/accounts/acme/recharges", json={"amount": "100"}).get_json()
    client.post("/v1/accounts/acme/usage", json={"idempotency_key": "u1", "product": "sms", "amount": "1"})
    client.post("/v1/accounts/acme/reservations", json={"reservation_id": "h1", "amount": "2"})
    invoice = client.post("/v1/accounts/acme/invoices", json={
        "type": "topup", "amount": "10", "description": "credits"}).get_json()
    bill = client.get("/v1/bills?account_id=acme").get_json()["items"][0]
    assert client.post("/v1/test-clocks", json={"frozen_time": "2027-01-01T00:00:00Z", "id": "clock_w"}
                       ).status_code == 201
    assert client.post("/v1/plans", json={"plan_id": "basic", "kind": "package", "name": "Basic", "period": "monthly",
                                          "currency": "SGD", "price": "5"}).status_code == 201
    subscribed = client.post("/v1/accounts/acme/subscriptions", json={"plan_id": "basic"}).get_json()
    ordered = client.post("/v1/accounts/acme/orders", json={"kind": "agent", "product": "proxy",
                                                            "unit_price": "1"}).get_json()
    return {"clock_id": "clock_w", "plan_id": "basic", "address_id": "hq", "payment_method_id": "card-1",
            "order_id": ordered["order"]["order_id"],
            "subscription_id": subscribed["subscription"]["subscription_id"], "account_id": "acme", "invoice_id": invoice["invoice_id"], "bill_no": bill["bill_no"],
            "transaction_no": recharge["transaction_no"], "reservation_id": "h1",
            "key_id": service.commands.api_keys()[0].key_id}


def operations(client) -> list[tuple[str, str, dict[str, Any]]]:
    spec = client.get("/openapi.json").get_json()
    return [(path, method, operation) for path, item in spec["paths"].items()
            for method, operation in item.items() if method in ("get", "post", "patch", "put", "delete")]


def call(test_client, method: str, path: str, ids: dict[str, str], query: str = "") -> Any:
    url = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path) + query
    return test_client.open(url, method=method.upper(), json={} if method != "get" else None)


def test_every_operation_declares_roles_and_refuses_anonymous_callers(client, app, world):
    anonymous = client_with_key(app, None)
    walked = 0
    for path, method, operation in operations(client):
        if operation.get("security") == []:
            assert path == "/openapi.json", f"{method} {path} is public"
            continue
        assert operation["security"] == [{"bearerAuth": []}], (method, path)
        assert "admin" in operation["x-roles"], (method, path)
        assert {"401", "403"} <= set(operation["responses"]), (method, path)
        answer = call(anonymous, method, path, world)
        assert (answer.status_code, answer.get_json()["error"]["code"]) == (401, "unauthenticated"), (method, path)
        walked += 1
    assert walked >= 40


def test_every_operation_refuses_the_roles_it_does_not_name(client, app, key_for, world):
    clients = {role: client_with_key(app, key_for(role)) for role in NON_ADMIN}
    refused = 0
    for path, method, operation in operations(client):
        for role in set(NON_ADMIN) - set(operation.get("x-roles", NON_ADMIN)):
            answer = call(clients[role], method, path, world)
            assert (answer.status_code, answer.get_json()["error"]["code"]) == (403, "forbidden"), (role, method, path)
            refused += 1
    assert refused >= 60


def test_the_auditor_writes_nothing_and_the_service_role_reads_no_invoices(client):
    for path, method, operation in operations(client):
        if method != "get":
            assert "auditor" not in operation["x-roles"], (method, path)
        if "invoice" in path or "bills" in path or "payments" in path:
            assert "service" not in operation["x-roles"], (method, path)


def test_a_key_scoped_to_another_account_sees_none_of_this_ones_objects(client, app, key_for, world):
    walked = 0
    for path, method, operation in operations(client):
        allowed = [r for r in operation.get("x-roles", []) if r != "admin"] or ["admin"]
        scoped = client_with_key(app, key_for(allowed[0], "other"))
        names = set(re.findall(r"\{(\w+)\}", path))
        if path.startswith("/v1/keys") or operation.get("x-all-accounts"):
            answer = call(scoped, method, path, world)
            assert answer.status_code == 403, (method, path, answer.get_json())
        elif names & OBJECT_PARAMETERS:
            answer = call(scoped, method, path, world)
            assert answer.status_code == 404, (method, path, answer.get_json())
            assert answer.get_json()["error"]["code"].endswith("_not_found"), (method, path)
        elif method == "get" and path != "/openapi.json":
            if "account_id" in {p["name"] for p in operation.get("parameters", [])}:
                asked = call(scoped, method, path, world, "?account_id=acme")
                assert (asked.status_code, asked.get_json()["error"]["code"]) == (404, "account_not_found"), path
            listed = call(scoped, method, path, world)
            assert listed.status_code == 200, (path, listed.get_data(as_text=True)[:300])
            assert b"acme" not in listed.get_data(), path  # lists, dashboards and exports alike
        else:
            continue
        walked += 1
    assert walked >= 35


def test_revoked_keys_stop_at_once_and_keys_are_managed_by_admins(client, app):
    made = client.post("/v1/keys", json={"role": "finance", "name": "books", "accounts": ["acme"]})
    assert made.status_code == 201
    body = made.get_json()
    assert body["secret"].startswith(f"ldk_{body['key_id']}_") and body["accounts"] == ["acme"]
    finance = client_with_key(app, body["secret"])
    assert finance.get("/v1/keys").status_code == 403
    assert finance.get("/v1/invoices").status_code == 200
    listed = client.get("/v1/keys").get_json()["items"]
    assert body["key_id"] in [k["key_id"] for k in listed] and "secret" not in listed[0]
    assert client.post(f"/v1/keys/{body['key_id']}/revoke").get_json()["revoked_at"] is not None
    assert finance.get("/v1/invoices").status_code == 401
    again = client.post(f"/v1/keys/{body['key_id']}/revoke")
    assert (again.status_code, again.get_json()["error"]["code"]) == (409, "api_key_revoked")
    forged = client_with_key(app, body["secret"][:-1] + ("A" if body["secret"][-1] != "A" else "B"))
    assert forged.get("/v1/invoices").status_code == 401
    assert client_with_key(app, "not-a-key").get("/v1/invoices").status_code == 401
