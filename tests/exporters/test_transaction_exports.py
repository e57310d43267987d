"""The balance-details exports against a real ledger (SQLite and PostgreSQL): over HTTP
(.xlsx, .csv) and with `ledger export transactions`."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from openpyxl import load_workbook

import api.exports
from exporters.columns import BALANCE_DETAIL_COLUMNS
from exporters.limits import ExportTooLarge
from projections.rows import TransactionFilter
from service.exports import iter_transactions

MICRO = Decimal("0.000001")
TITLES = [c.title for c in BALANCE_DETAIL_COLUMNS]
USAGE = [("sms", "0.000009"), ("whatsapp", "1.20544"), ("sms", "12.3456"), ("whatsapp", "0.1"),
         ("sms", "7.654321"), ("voice", "3")]


@pytest.fixture
def acme(client):
    opened = client.post("/v1/accounts", json={
        "account_id": "acme", "billing_mode": "prepaid", "invoice_mode": "consolidated", "currency": "SGD",
        "payer": {"name": "Şirket Ünal 北京 شركة"}})
    assert opened.status_code == 201, opened.get_json()
    assert client.post("/v1/accounts/acme/recharges", json={"amount": "100", "reference": "PAY-1"}).status_code == 201
    for index, (product, amount) in enumerate(USAGE):
        booked = client.post("/v1/accounts/acme/usage", json={
            "idempotency_key": f"u{index}", "product": product, "amount": amount, "application_id": "app-7"})
        assert booked.status_code == 201, booked.get_json()
    return "acme"


def listed(client, query: str = "") -> list[dict]:
    """What the list endpoint shows for the same filters (every page)."""
    page = client.get(f"/v1/accounts/acme/transactions?limit=500{query}").get_json()
    assert page["next_cursor"] is None
    return page["items"]


def xlsx_rows(content: bytes) -> list[tuple]:
    sheet = load_workbook(io.BytesIO(content)).active
    assert sheet.freeze_panes == "A2"
    assert [c.value for c in sheet[1]] == TITLES
    return [tuple(c.value for c in row) for row in sheet.iter_rows(min_row=2)]


def test_the_xlsx_export_holds_what_the_list_shows(client, acme):
    response = client.get("/v1/accounts/acme/transactions/export.xlsx")
    assert response.status_code == 200
    assert response.mimetype == api.exports.XLSX_TYPE
    assert 'attachment; filename=acme-transactions.xlsx' in response.headers["Content-Disposition"]
    rows, items = xlsx_rows(response.data), listed(client)
    assert len(rows) == len(items) == 7
    for (time, number, kind, item, application, amount, balance, currency), expected in zip(rows, items):
        assert number == expected["transaction_no"] and kind == expected["type"] and item == expected["item"]
        booked = datetime.fromisoformat(expected["time"]).astimezone(timezone.utc).replace(tzinfo=None)
        assert time == booked.replace(microsecond=booked.microsecond // 1000 * 1000)  # Excel: to the ms
        assert Decimal(str(amount)).quantize(MICRO) == Decimal(expected["amount"])
        assert Decimal(str(balance)).quantize(MICRO) == Decimal(expected["balance_after"])
        assert application == (expected["application_id"] or None) and currency == "SGD"
    # the ledger's figures: 100 in, the usage out; the newest balance is the current balance
    assert sum(Decimal(str(r[5])).quantize(MICRO) for r in rows) == Decimal("100") - sum(Decimal(a) for _, a in USAGE)
    current = client.get("/v1/accounts/acme/balance").get_json()["current_balance"]
    assert Decimal(str(rows[0][6])).quantize(MICRO) == Decimal(current) == Decimal("75.69463")


def test_the_csv_export_is_exact_and_takes_the_list_filters(client, acme):
    response = client.get("/v1/accounts/acme/transactions/export.csv?type=Expense&product=sms")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="acme-transactions.csv"'
    records = list(csv.DictReader(io.StringIO(response.get_data(as_text=True), newline="")))
    items = listed(client, "&type=Expense&product=sms")
    assert [r["Transaction no."] for r in records] == [i["transaction_no"] for i in items]
    assert [r["Amount"] for r in records] == ["-7.654321", "-12.3456", "-0.000009"]
    assert [Decimal(r["Balance after"]) for r in records] == [Decimal(i["balance_after"]) for i in items]


def test_the_xlsx_export_takes_the_list_filters(client, acme):
    query = "?type=Recharge"
    rows = xlsx_rows(client.get(f"/v1/accounts/acme/transactions/export.xlsx{query}").data)
    assert [(r[1], r[2], r[5]) for r in rows] == [(i["transaction_no"], "Recharge", 100) for i in listed(client, "&type=Recharge")]
    assert len(rows) == 1
    empty = xlsx_rows(client.get("/v1/accounts/acme/transactions/export.xlsx?from=2099-01-01T00:00:00Z").data)
    assert empty == []


@pytest.mark.parametrize("extension", ["xlsx", "csv"])
@pytest.mark.parametrize("query, status, code", [
    ("?cursor=abc", 400, "invalid_input"),  # an export has no pages
    ("?limit=10", 400, "invalid_input"),
    ("?type=Bogus", 400, "invalid_input"),
])
def test_export_queries_are_checked_like_the_list(client, acme, extension, query, status, code):
    response = client.get(f"/v1/accounts/acme/transactions/export.{extension}{query}")
    assert (response.status_code, response.get_json()["error"]["code"]) == (status, code)


@pytest.mark.parametrize("extension", ["xlsx", "csv"])
def test_an_unknown_account_is_a_404_before_any_byte(client, extension):
    response = client.get(f"/v1/accounts/nobody/transactions/export.{extension}")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "account_not_found"


def test_past_the_row_limit_xlsx_is_refused_and_csv_breaks_off(client, acme, monkeypatch):
    monkeypatch.setattr(api.exports, "MAX_ROWS", 3)
    refused = client.get("/v1/accounts/acme/transactions/export.xlsx")
    assert refused.status_code == 422
    assert refused.get_json()["error"]["code"] == "export_too_large"
    # A CSV stream has sent its headers by then: it ends unfinished (an error, not a short file).
    with pytest.raises(ExportTooLarge):
        client.get("/v1/accounts/acme/transactions/export.csv").get_data()


def test_rows_are_read_page_by_page_without_gaps(service, client, acme):
    query = TransactionFilter(account_id="acme")
    every = service.view.transactions(query, limit=500).rows
    assert [r.transaction_no for r in iter_transactions(service, query, page_rows=2)] == \
        [r.transaction_no for r in every]
    assert len(every) == 7


def test_the_cli_writes_xlsx_and_csv(client, acme, run_cli, tmp_path):
    xlsx = tmp_path / "acme.xlsx"
    result = run_cli("export", "transactions", "--account", "acme", "--out", str(xlsx))
    assert result.exit_code == 0, result.output
    assert "exported 7 rows of acme" in result.output
    assert [r[1] for r in xlsx_rows(xlsx.read_bytes())] == [i["transaction_no"] for i in listed(client)]
    out = tmp_path / "sms.txt"
    result = run_cli("export", "transactions", "--account", "acme", "--out", str(out), "--format", "csv",
                     "--product", "sms")
    assert result.exit_code == 0, result.output
    records = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    assert [r["Amount"] for r in records] == ["-7.654321", "-12.3456", "-0.000009"]


def test_the_cli_leaves_no_file_when_it_fails(client, run_cli, tmp_path):
    folder = tmp_path / "out"  # not tmp_path itself: the SQLite database lives there
    folder.mkdir()
    out = folder / "nobody.xlsx"
    result = run_cli("export", "transactions", "--account", "nobody", "--out", str(out))
    assert result.exit_code == 1
    assert "account_not_found" in result.output
    assert list(folder.iterdir()) == []
    bad_time = run_cli("export", "transactions", "--account", "acme", "--out", str(out), "--from", "2026-01-01")
    assert bad_time.exit_code == 2 and "offset" in bad_time.output


def test_a_cli_export_that_fails_half_way_leaves_no_half_file(client, acme, run_cli, tmp_path, monkeypatch):
    import entrypoints.export_cli as export_cli

    def half_then_refuse(columns, rows, path, **options):
        path.write_bytes(b"half a workbook")
        raise ExportTooLarge("the export has more than 3 rows: narrow the filters")

    monkeypatch.setattr(export_cli, "write_xlsx", half_then_refuse)
    folder = tmp_path / "out"
    folder.mkdir()
    result = run_cli("export", "transactions", "--account", "acme", "--out", str(folder / "acme.xlsx"))
    assert result.exit_code == 1 and "export_too_large" in result.output
    assert list(folder.iterdir()) == []
