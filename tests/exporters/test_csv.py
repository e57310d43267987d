"""CSV exports read back: the same columns as Excel, exact decimals, bounded chunks."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import pytest

from exporters.columns import BALANCE_DETAIL_COLUMNS, BILL_DETAIL_COLUMNS, INVOICE_REPORT_COLUMNS
from exporters.csv_export import csv_chunks, write_csv
from exporters.limits import ExportTooLarge
from tests.exporters.samples import balance_detail_rows, bill_detail_rows, invoice_report_rows


def read_back(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_balance_details_come_back_exact():
    rows = list(balance_detail_rows(1_234))
    records = read_back("".join(csv_chunks(BALANCE_DETAIL_COLUMNS, rows)))
    assert list(records[0]) == [c.title for c in BALANCE_DETAIL_COLUMNS]
    assert [Decimal(r["Amount"]) for r in records] == [row.amount for row in rows]
    assert [Decimal(r["Balance after"]) for r in records] == [row.balance_after for row in rows]
    assert sum(Decimal(r["Amount"]) for r in records) == sum(row.amount for row in rows)
    assert [datetime.fromisoformat(r["Time (UTC)"]) for r in records] == [row.time for row in rows]
    assert records[0]["Time (UTC)"].endswith("Z")


def test_amounts_are_plain_decimal_text_with_every_place():
    row = replace(next(balance_detail_rows(1)), amount=Decimal("-1610.815440"),
                  balance_after=Decimal("123456789012345.000001"))
    record = read_back("".join(csv_chunks(BALANCE_DETAIL_COLUMNS, [row])))[0]
    assert record["Amount"] == "-1610.81544"
    assert record["Balance after"] == "123456789012345.000001"  # beyond any double: still exact


def test_bill_details_and_invoice_report_have_the_excel_columns():
    bills = list(bill_detail_rows(20))
    records = read_back("".join(csv_chunks(BILL_DETAIL_COLUMNS, bills)))
    assert list(records[0]) == [c.title for c in BILL_DETAIL_COLUMNS]
    assert [Decimal(r["Consumption amount"]) for r in records] == [b.consumption_amount for b in bills]
    assert [Decimal(r["Service usage"]) for r in records] == [b.service_usage for b in bills]
    assert records[0]["Application name"] == bills[0].application_name
    invoices = list(invoice_report_rows(5))
    records = read_back("".join(csv_chunks(INVOICE_REPORT_COLUMNS, invoices)))
    assert list(records[0]) == [c.title for c in INVOICE_REPORT_COLUMNS]
    assert records[1]["Issue date"] == "2026-02-01"
    assert [Decimal(r["Outstanding"]) for r in records] == [i.outstanding for i in invoices]


def test_the_stream_comes_in_chunks_of_at_most_the_chunk_size():
    chunks = list(csv_chunks(BALANCE_DETAIL_COLUMNS, balance_detail_rows(1_050), rows_per_chunk=500))
    lines_per_chunk = [chunk.count("\r\n") for chunk in chunks]
    assert lines_per_chunk == [501, 500, 50]  # the header rides with the first rows
    exact = list(csv_chunks(BALANCE_DETAIL_COLUMNS, balance_detail_rows(1_000), rows_per_chunk=500))
    assert [chunk.count("\r\n") for chunk in exact] == [501, 500]  # no empty chunk at the end


def test_the_stream_is_lazy_and_stops_past_the_limit():
    pulled = 0

    def counted():
        nonlocal pulled
        for row in balance_detail_rows(10_000):
            pulled += 1
            yield row

    chunks = csv_chunks(BALANCE_DETAIL_COLUMNS, counted(), max_rows=1_200, rows_per_chunk=500)
    next(chunks)
    assert pulled == 500  # nothing is read ahead of what is sent
    next(chunks)
    with pytest.raises(ExportTooLarge):
        list(chunks)
    assert pulled == 1_201


def test_text_that_a_spreadsheet_would_run_as_a_formula_is_quoted():
    row = replace(next(balance_detail_rows(1)), item="=1+2", application="@SUM(A1)")
    record = read_back("".join(csv_chunks(BALANCE_DETAIL_COLUMNS, [row])))[0]
    assert record["Item"] == "'=1+2" and record["Application"] == "'@SUM(A1)"
    assert record["Amount"] == "500.00"  # amounts are never touched


def test_write_csv_counts_rows_and_reports_progress(tmp_path):
    seen: list[int] = []
    path = tmp_path / "b.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        assert write_csv(BALANCE_DETAIL_COLUMNS, balance_detail_rows(1_001), out, progress=seen.append) == 1_001
    assert seen == [500, 500, 1]
    assert len(read_back(path.read_text(encoding="utf-8"))) == 1_001
