"""Bills, invoices and receipts of a real ledger as PDF, and the bills and invoices
exports read back: every figure equals what the ledger holds."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from decimal import Decimal

import pandas as pd
import pytest

from tests.exporters.conftest import pdf_pages

PAYER = {"name": "Şirket Ünal Ğ", "organization": "深圳市腾云科技有限公司", "tax_id": "TR-123",
         "address": "Büyükdere Cd. 1\nŞişli İstanbul", "emails": ["ap@unal.test"]}


@pytest.fixture
def ledger(client, clock):
    """A prepaid account that went into overdraft in November, and a postpaid one with a paid invoice."""
    clock.now = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
    for account_id, mode, extra in (("pre", "prepaid", {}), ("post", "postpaid", {"credit_limit": "100"})):
        response = client.post("/v1/accounts", json={"account_id": account_id, "billing_mode": mode,
                                                     "invoice_mode": "consolidated", "currency": "SGD",
                                                     "tax_rate": "0.09", "payer": PAYER, **extra})
        assert response.status_code == 201, response.get_json()
    client.post("/v1/accounts/pre/recharges", json={"amount": "10", "reference": "TOPUP-1", "method": "card"})
    usage = [("pre", "u1", "6.000009", "AK1", "WABA-111"), ("pre", "u2", "7.5", "AK2", "WABA-222"),
             ("post", "u1", "40", "AK9", None)]
    for account_id, key, amount, app_key, channel in usage:
        response = client.post(f"/v1/accounts/{account_id}/usage", json={
            "idempotency_key": key, "product": "whatsapp", "application_id": "app-1", "application_name": "Shop Bot",
            "app_key": app_key, "channel_account": channel, "quantity": "100", "unit": "conversation",
            "amount": amount, "occurred_at": "2026-11-10T00:00:00Z"})
        assert response.status_code == 201
    clock.now = datetime(2026, 12, 1, tzinfo=timezone.utc)  # the cycle has ended
    [invoice_id] = client.post("/v1/accounts/post/cycles/close", json={"as_of": "2026-12-01T00:00:00Z"}
                               ).get_json()["invoice_ids"]
    clock.now = datetime(2026, 12, 2, tzinfo=timezone.utc)
    client.post(f"/v1/invoices/{invoice_id}/approve")
    payment = client.post("/v1/accounts/post/payments", json={"payment_id": "p1", "amount": "20", "method": "wire",
                                                              "reference": "W-77"}).get_json()
    return {"invoice_id": invoice_id, "payment_no": payment["transaction_no"]}


def test_bill_pdf_shows_payer_cycle_usage_status_and_overdraft(client, ledger):
    [bill] = client.get("/v1/bills?account_id=pre").get_json()["items"]
    response = client.get(f"/v1/bills/{bill['bill_no']}.pdf")
    assert (response.status_code, response.mimetype) == (200, "application/pdf")
    text = "\n".join(line for page in pdf_pages(response.data) for line in page)
    for expected in (bill["bill_no"], "Şirket Ünal Ğ", "深圳市腾云科技有限公司", "TR-123", "2026-11", "whatsapp",
                     "AK1", "AK2", "Shop Bot", "whatsapp · WABA-111", "13.500009", "3.500009", "Pending"):
        assert expected in text, expected
    assert client.get("/v1/bills/B000000-NOPE.pdf").status_code == 404


def test_invoice_pdf_shows_lines_tax_totals_payments_and_due_date(client, ledger):
    response = client.get(f"/v1/invoices/{ledger['invoice_id']}.pdf")
    assert response.status_code == 200
    text = "\n".join(line for page in pdf_pages(response.data) for line in page)
    # 40.00 + 9% tax (3.60) = 43.60; 20 paid by W-77; 23.60 outstanding; due 14 days after Dec 2.
    for expected in ("INV-2026-000001", "40.00", "3.60", "43.60", "W-77", "20.00", "23.60", "2026-12-16",
                     "Partially paid", "AK9"):
        assert expected in text, expected
    by_number = client.get("/v1/invoices/INV-2026-000001.pdf")
    assert by_number.status_code == 200


def test_receipts_for_a_payment_and_a_recharge(client, ledger):
    payment = client.get(f"/v1/receipts/{ledger['payment_no']}.pdf")
    text = "\n".join(line for page in pdf_pages(payment.data) for line in page)
    for expected in (ledger["payment_no"], "20.00", "W-77", "wire", "INV-2026-000001"):
        assert expected in text, expected
    recharge_no = client.get("/v1/accounts/pre/transactions?type=Recharge").get_json()["items"][0]["transaction_no"]
    recharge = "\n".join(x for p in pdf_pages(client.get(f"/v1/receipts/{recharge_no}.pdf").data) for x in p)
    assert "TOPUP-1" in recharge and "10.00" in recharge
    usage_no = client.get("/v1/accounts/pre/transactions?type=Expense").get_json()["items"][0]["transaction_no"]
    refused = client.get(f"/v1/receipts/{usage_no}.pdf")
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (404, "transaction_not_found")


def test_bills_export_adds_up_to_the_bills(client, ledger):
    bills = client.get("/v1/bills").get_json()["items"]
    frame = pd.read_excel(io.BytesIO(client.get("/v1/bills/export.xlsx").data))
    assert list(frame.columns)[:4] == ["Billing cycle", "Product", "Channel account", "AppKey"]
    assert len(frame) == 3  # pre: AK1 and AK2 lines; post: AK9
    assert sorted(frame["Channel account"].fillna("")) == ["", "WABA-111", "WABA-222"]
    assert set(frame["Application name"]) == {"Shop Bot"}
    consumption = sum(Decimal(str(x)).quantize(Decimal("0.000001")) for x in frame["Consumption amount"])
    overdraft = sum(Decimal(str(x)).quantize(Decimal("0.000001")) for x in frame["Overdraft amount"])
    assert consumption == sum(Decimal(b["amount"]) for b in bills) == Decimal("53.500009")
    assert overdraft == sum(Decimal(b["overdraft"]) for b in bills)
    rows = list(csv.DictReader(io.StringIO(client.get("/v1/bills/export.csv?account_id=pre").data.decode())))
    assert sorted(r["Consumption amount"] for r in rows) == ["6.000009", "7.50"]
    assert client.get("/v1/bills/export.csv?cursor=x").status_code == 400


def test_invoice_report_export_equals_the_ledger(client, ledger):
    frame = pd.read_excel(io.BytesIO(client.get("/v1/invoices/export.xlsx?account_id=post").data))
    [row] = frame.to_dict("records")
    assert (row["Invoice no."], row["Payment status"]) == ("INV-2026-000001", "Partially paid")
    assert [Decimal(str(row[c])).quantize(Decimal("0.01")) for c in ("Subtotal", "Tax", "Total", "Paid", "Outstanding")] \
        == [Decimal("40.00"), Decimal("3.60"), Decimal("43.60"), Decimal("20.00"), Decimal("23.60")]
    [text_row] = list(csv.DictReader(io.StringIO(client.get("/v1/invoices/export.csv").data.decode())))
    assert (text_row["Total"], text_row["Outstanding"]) == ("43.60", "23.60")


def test_cli_exports_bills_and_invoices(client, ledger, run_cli, tmp_path):
    bills = run_cli("export", "bills", "--out", str(tmp_path / "bills.csv"), "--account", "pre")
    assert bills.exit_code == 0, bills.output
    rows = list(csv.DictReader((tmp_path / "bills.csv").open(encoding="utf-8")))
    assert sorted(r["AppKey"] for r in rows) == ["AK1", "AK2"]
    invoices = run_cli("export", "invoices", "--out", str(tmp_path / "invoices.xlsx"), "--payment-status",
                       "partially_paid")
    assert invoices.exit_code == 0, invoices.output
    frame = pd.read_excel(tmp_path / "invoices.xlsx")
    assert list(frame["Invoice no."]) == ["INV-2026-000001"]
