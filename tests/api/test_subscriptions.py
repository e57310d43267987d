"""Plans and subscriptions through HTTP on SQLite and PostgreSQL (issue 12, items 1-3)."""

from __future__ import annotations

from datetime import datetime, timezone

from tests.api.test_finance_fixes import open_account
from tests.conftest import client_with_key


def plan(client, plan_id, kind, price, period="monthly", currency="SGD", **extra):
    made = client.post("/v1/plans", json={"plan_id": plan_id, "kind": kind, "name": plan_id.title(), "period": period,
                                          "currency": currency, "price": price, **extra})
    assert made.status_code == 201, made.get_json()
    return made.get_json()


def change(client, sub, body, status=200):
    answer = client.post(f"/v1/accounts/acme/subscriptions/{sub}/changes", json=body)
    assert answer.status_code == status, answer.get_json()
    return answer.get_json()


def test_a_package_change_mid_cycle_posts_what_its_preview_said_and_the_invoice_shows_it(client, clock):
    plan(client, "basic", "package", "31", allowances={"seats": "3"})
    plan(client, "pro", "package", "62", allowances={"seats": "10"})
    open_account(client, "acme", "SGD", billing_mode="postpaid", credit_limit="1000", tax_rate="0.09",
                 drafts_need_approval=False)
    clock.now = datetime(2026, 12, 1, 9, tzinfo=timezone.utc)
    made = client.post("/v1/accounts/acme/subscriptions", json={"plan_id": "basic"},
                       headers={"Idempotency-Key": "sub-1"})
    assert made.status_code == 201, made.get_json()
    sub = made.get_json()["subscription"]["subscription_id"]
    again = client.post("/v1/accounts/acme/subscriptions", json={"plan_id": "basic"},
                        headers={"Idempotency-Key": "sub-1"})
    assert (again.status_code, again.get_json()["replayed"]) == (200, True)
    detail = client.get(f"/v1/accounts/acme/subscriptions/{sub}").get_json()
    assert (detail["period_start"], detail["period_last_day"], detail["next_payment_date"]) == (
        "2026-12-01", "2026-12-31", "2027-01-01")
    assert detail["package"]["allowances"] == {"seats": "3"} and detail["amount_per_period"] == "31.00"

    clock.now = datetime(2026, 12, 21, 9, tzinfo=timezone.utc)  # 11 of 31 days left
    body = {"change": "change_package", "plan_id": "pro"}
    preview = client.post(f"/v1/accounts/acme/subscriptions/{sub}/preview", json=body).get_json()
    assert [(m["type"], m["amount"]) for m in preview["movements"]] == [("System", "11.00"), ("Expense", "-22.00")]
    assert preview["net"] == "11.00"
    assert (preview["next_invoice_before"]["total"], preview["next_invoice_after"]["total"]) == ("33.79", "45.78")
    assert client.get(f"/v1/accounts/acme/subscriptions/{sub}").get_json()["package"]["plan_id"] == "basic"

    done = change(client, sub, {**body, "idempotency_key": "c1"})
    assert (done["amount"], done["subscription"]["package"]["plan_id"]) == ("11.00", "pro")
    rows = client.get("/v1/accounts/acme/transactions").get_json()["items"]
    assert [(r["type"], r["amount"], r["description"]) for r in rows[:2]] == [
        (m["type"], m["amount"], m["description"]) for m in reversed(preview["movements"])]
    clock.now = datetime(2027, 1, 1, 0, 30, tzinfo=timezone.utc)
    [invoice_id] = client.post("/v1/accounts/acme/cycles/close", json={}).get_json()["invoice_ids"]
    invoice = client.get(f"/v1/invoices/{invoice_id}").get_json()
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == ("42.00", "3.78", "45.78")
    assert sorted((x["kind"], x["amount"]) for x in invoice["lines"]) == [
        ("charge", "22.00"), ("charge", "31.00"), ("credit", "-11.00")]


def test_bad_subscription_requests_get_their_codes_and_write_nothing(client, app, key_for, clock):
    plan(client, "basic", "package", "10")
    plan(client, "ai", "addon", "3")
    plan(client, "eur", "package", "10", currency="EUR")
    open_account(client, "acme", "SGD", billing_mode="postpaid", credit_limit="1000")

    def refused(path, body, status, code):
        before = client.get("/v1/accounts/acme/transactions").get_json()["items"]
        answer = client.post(path, json=body)
        assert (answer.status_code, answer.get_json()["error"]["code"]) == (status, code), answer.get_json()
        assert client.get("/v1/accounts/acme/transactions").get_json()["items"] == before

    refused("/v1/accounts/acme/subscriptions", {"plan_id": "nope"}, 404, "plan_not_found")
    refused("/v1/accounts/acme/subscriptions", {"plan_id": "ai"}, 400, "invalid_input")  # an add-on
    refused("/v1/accounts/acme/subscriptions", {"plan_id": "eur"}, 422, "currency_mismatch")
    sub = client.post("/v1/accounts/acme/subscriptions", json={"plan_id": "basic"}).get_json()[
        "subscription"]["subscription_id"]
    change(client, sub, {"change": "cancel", "at_period_end": False})
    refused(f"/v1/accounts/acme/subscriptions/{sub}/changes", {"change": "cancel", "at_period_end": False},
            422, "subscription_not_active")  # cancelling twice
    refused(f"/v1/accounts/acme/subscriptions/{sub}/changes", {"change": "add_addon", "plan_id": "ai"},
            422, "subscription_not_active")
    refused("/v1/accounts/acme/subscriptions/sub_nothing/changes", {"change": "reactivate"},
            404, "subscription_not_found")
    refused(f"/v1/accounts/acme/subscriptions/{sub}/changes", {"change": "add_addon"}, 400, "invalid_input")
    assert client.post("/v1/plans/basic/retire").status_code == 200
    refused("/v1/accounts/acme/subscriptions", {"plan_id": "basic"}, 422, "plan_retired")
    finance = client_with_key(app, key_for("finance"))
    assert finance.post("/v1/plans", json={"plan_id": "x", "kind": "package", "name": "X", "period": "monthly",
                                           "currency": "SGD", "price": "1"}).status_code == 403
    open_account(client, "other", "SGD")
    scoped = client_with_key(app, key_for("finance", "other"))
    assert scoped.get(f"/v1/accounts/acme/subscriptions/{sub}").status_code == 404
    assert client.get(f"/v1/accounts/other/subscriptions/{sub}").status_code == 404  # not that account's
    assert client.delete(f"/v1/accounts/acme/subscriptions/{sub}").get_json()["deleted"] is True


def test_subscriptions_list_with_filters_search_and_a_cursor_and_deleted_ones_hidden(client, app, key_for, clock):
    plan(client, "chat-basic", "package", "10")
    plan(client, "chat-pro", "package", "30")
    plan(client, "chat-yearly", "package", "100", period="yearly")
    plan(client, "telegram", "addon", "2")
    open_account(client, "acme", "SGD", billing_mode="postpaid", credit_limit="1000")
    open_account(client, "beta", "SGD", billing_mode="postpaid", credit_limit="1000")

    def subscribe(account_id, plan_id):
        made = client.post(f"/v1/accounts/{account_id}/subscriptions", json={"plan_id": plan_id})
        assert made.status_code == 201, made.get_json()
        return made.get_json()["subscription"]["subscription_id"]

    first = subscribe("acme", "chat-basic")
    second = subscribe("acme", "chat-yearly")
    third = subscribe("beta", "chat-pro")
    change(client, first, {"change": "add_addon", "plan_id": "telegram"})

    def ids(path):
        answer = client.get(path)
        assert answer.status_code == 200, answer.get_json()
        return [s["subscription_id"] for s in answer.get_json()["items"]]

    assert ids("/v1/subscriptions") == [third, second, first]  # newest first
    assert ids("/v1/subscriptions?account_id=acme") == ids("/v1/accounts/acme/subscriptions") == [second, first]
    assert ids("/v1/subscriptions?period=YEARLY") == [second] and ids("/v1/subscriptions?plan_id=chat-pro") == [third]
    assert ids("/v1/subscriptions?q=TELEGRAM") == [first]  # an add-on's name
    row = client.get("/v1/subscriptions?q=telegram").get_json()["items"][0]
    assert (row["amount_per_period"], row["addons"], row["next_payment_date"]) == ("12.00", ["telegram"],
                                                                                  "2026-12-26")
    page = client.get("/v1/subscriptions?limit=2").get_json()
    rest = client.get(f"/v1/subscriptions?limit=2&cursor={page['next_cursor']}").get_json()
    assert [s["subscription_id"] for s in page["items"] + rest["items"]] == [third, second, first]
    change(client, second, {"change": "cancel", "at_period_end": False})
    assert ids("/v1/subscriptions?status=cancelled") == [second]
    client.delete(f"/v1/accounts/acme/subscriptions/{second}")
    assert ids("/v1/subscriptions") == [third, first]  # deleted: hidden, kept in history
    assert client.get(f"/v1/accounts/acme/subscriptions/{second}").get_json()["deleted"] is True
    scoped = client_with_key(app, key_for("finance", "beta"))
    assert [s["subscription_id"] for s in scoped.get("/v1/subscriptions").get_json()["items"]] == [third]
    assert client.get("/v1/subscriptions?status=paused").status_code == 400


def test_the_prediction_counts_renewals_due_in_the_cycle_at_current_prices(client, clock):
    plan(client, "basic", "package", "10")
    open_account(client, "acme", "SGD", billing_mode="postpaid", credit_limit="1000", tax_rate="0.1")
    client.post("/v1/accounts/acme/subscriptions", json={"plan_id": "basic"})  # Nov 26: renews Dec 26
    before = client.get("/v1/accounts/acme/invoices/prediction").get_json()
    assert before["subscription_renewals"] == "0.00"  # November's cycle: no renewal in it
    client.post("/v1/plans/basic/prices", json={"price": "12"})
    clock.now = datetime(2026, 12, 1, 0, 30, tzinfo=timezone.utc)
    client.post("/v1/accounts/acme/cycles/close", json={})
    after = client.get("/v1/accounts/acme/invoices/prediction").get_json()
    assert (after["subscription_renewals"], after["estimated_subtotal"], after["estimated_total"]) == (
        "12.00", "12.00", "13.20")


def test_a_subscription_names_its_subscriber_and_the_payment_method_that_pays_it(client):
    plan(client, "basic", "package", "10")
    open_account(client, "acme", "SGD", billing_mode="postpaid", credit_limit="1000")
    for method in ("card-1", "card-2"):
        client.put(f"/v1/accounts/acme/payer-profile/payment-methods/{method}", json={
            "provider": "stripe", "token": f"pm_{method}", "last4": "4242"})
    first = client.post("/v1/accounts/acme/subscriptions", json={"plan_id": "basic", "subscriber": "Ann Lee"})
    assert first.get_json()["subscription"]["payment_method_id"] == "card-1"  # the profile's default
    second = client.post("/v1/accounts/acme/subscriptions", json={"plan_id": "basic", "payment_method_id": "card-2"})
    assert second.status_code == 201, second.get_json()
    unknown = client.post("/v1/accounts/acme/subscriptions", json={"plan_id": "basic", "payment_method_id": "nope"})
    assert (unknown.status_code, unknown.get_json()["error"]["code"]) == (400, "invalid_input")
    rows = client.get("/v1/subscriptions?payment_method_id=card-2").get_json()["items"]
    assert [r["subscription_id"] for r in rows] == [second.get_json()["subscription"]["subscription_id"]]
    found = client.get("/v1/subscriptions?q=ann").get_json()["items"]
    assert [(r["subscriber"], r["payment_method_id"]) for r in found] == [("Ann Lee", "card-1")]
