"""Excel exports read back with openpyxl and pandas: columns, cell types, formats, exact sums."""

from __future__ import annotations

import glob
import os
import tempfile
import zipfile
from datetime import date, datetime, timezone
from decimal import Decimal

import pandas as pd
import pytest
from openpyxl import load_workbook

from exporters.columns import BALANCE_DETAIL_COLUMNS, BILL_DETAIL_COLUMNS, INVOICE_REPORT_COLUMNS, Kind
from exporters.excel import AMOUNT_FORMAT, DATE_FORMAT, DATETIME_FORMAT, write_xlsx
from exporters.limits import MAX_EXPORT_ROWS, ExportTooLarge
from exporters.rows import BalanceDetailRow
from tests.exporters.samples import balance_detail_rows, bill_detail_rows, invoice_report_rows

MICRO = Decimal("0.000001")


def ledger_decimal(number: float) -> Decimal:
    """A double read back from the sheet, as the ledger's 6-place Decimal."""
    return Decimal(str(number)).quantize(MICRO)


@pytest.fixture
def balance_xlsx(tmp_path):
    path = tmp_path / "balance.xlsx"
    rows = list(balance_detail_rows(1_000))
    count = write_xlsx(BALANCE_DETAIL_COLUMNS, iter(rows), path, sheet_title="Balance details")
    assert count == 1_000
    return path, rows


def test_balance_details_have_the_columns_a_frozen_filtered_header_and_widths(balance_xlsx):
    path, _ = balance_xlsx
    sheet = load_workbook(path)["Balance details"]
    assert [c.value for c in sheet[1]] == ["Time (UTC)", "Transaction no.", "Type", "Item", "Application",
                                           "Amount", "Balance after", "Currency"]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:H1001"
    assert sheet.max_row == 1001
    assert [sheet.column_dimensions[letter].width for letter in "ABCDEFGH"] == [20, 22, 10, 24, 18, 16, 18, 9]
    assert all(cell.font.bold for cell in sheet[1])


def test_amounts_are_numbers_and_times_are_datetimes_with_formats(balance_xlsx):
    path, rows = balance_xlsx
    sheet = load_workbook(path)["Balance details"]
    time_cell, amount_cell, balance_cell = sheet["A2"], sheet["F2"], sheet["G2"]
    assert isinstance(time_cell.value, datetime) and time_cell.number_format == DATETIME_FORMAT
    assert time_cell.value == rows[0].time.astimezone(timezone.utc).replace(tzinfo=None)
    assert amount_cell.data_type == "n" and amount_cell.number_format == AMOUNT_FORMAT
    assert balance_cell.data_type == "n" and balance_cell.number_format == AMOUNT_FORMAT


def test_every_amount_reads_back_as_the_ledger_decimal_and_the_sums_agree(balance_xlsx):
    path, rows = balance_xlsx
    frame = pd.read_excel(path, sheet_name="Balance details")
    assert list(frame.columns) == [c.title for c in BALANCE_DETAIL_COLUMNS]
    assert frame["Amount"].dtype == "float64" and frame["Balance after"].dtype == "float64"
    assert str(frame["Time (UTC)"].dtype).startswith("datetime64")
    amounts = [ledger_decimal(x) for x in frame["Amount"]]
    balances = [ledger_decimal(x) for x in frame["Balance after"]]
    assert amounts == [row.amount for row in rows]
    assert balances == [row.balance_after for row in rows]
    assert sum(amounts) == sum(row.amount for row in rows)
    assert list(frame["Transaction no."]) == [row.transaction_no for row in rows]


def test_the_file_holds_the_exact_decimal_text_of_each_amount(tmp_path):
    # Beyond what a reader's double gives back: the XML itself has the stored value.
    row = next(balance_detail_rows(1))
    exact = BalanceDetailRow(**{**{f: getattr(row, f) for f in row.__slots__},
                                "amount": Decimal("-1610.815440"), "balance_after": Decimal("65.979991")})
    path = tmp_path / "one.xlsx"
    write_xlsx(BALANCE_DETAIL_COLUMNS, [exact], path)
    sheet_xml = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()
    assert "<v>-1610.815440</v>" in sheet_xml and "<v>65.979991</v>" in sheet_xml


@pytest.mark.parametrize("amount", ["999999999.999999", "-2147483647.999999", "0.000001", "-0.000009",
                                    "123456789.123456", "1000000000000"])
def test_amounts_up_to_the_documented_bound_survive_a_double(tmp_path, amount):
    row = next(balance_detail_rows(1))
    big = BalanceDetailRow(**{**{f: getattr(row, f) for f in row.__slots__}, "amount": Decimal(amount)})
    path = tmp_path / "big.xlsx"
    write_xlsx(BALANCE_DETAIL_COLUMNS, [big], path)
    assert ledger_decimal(pd.read_excel(path)["Amount"][0]) == Decimal(amount)


def test_bill_details_have_their_columns_and_exact_amounts(tmp_path):
    path = tmp_path / "bills.xlsx"
    rows = list(bill_detail_rows(300))
    write_xlsx(BILL_DETAIL_COLUMNS, rows, path, sheet_title="Bill details")
    frame = pd.read_excel(path)
    assert list(frame.columns) == ["Billing cycle", "Product", "Channel account", "AppKey", "Application ID",
                                   "Application name", "Service usage", "Unit", "Consumption amount", "Currency",
                                   "Payment status", "Overdraft amount"]
    assert [ledger_decimal(x) for x in frame["Consumption amount"]] == [r.consumption_amount for r in rows]
    assert [ledger_decimal(x) for x in frame["Overdraft amount"]] == [r.overdraft_amount for r in rows]
    assert sum(ledger_decimal(x) for x in frame["Consumption amount"]) == sum(r.consumption_amount for r in rows)
    assert [Decimal(str(x)) for x in frame["Service usage"]] == [r.service_usage for r in rows]
    assert set(frame["Application name"]) == {rows[0].application_name}  # Chinese text intact
    sheet = load_workbook(path).active
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:L301"


def test_invoice_report_has_date_cells_and_exact_totals(tmp_path):
    path = tmp_path / "invoices.xlsx"
    rows = list(invoice_report_rows(48))
    write_xlsx(INVOICE_REPORT_COLUMNS, rows, path, sheet_title="Invoices")
    sheet = load_workbook(path).active
    assert [c.value for c in sheet[1]] == [c.title for c in INVOICE_REPORT_COLUMNS]
    issue = sheet["C2"]
    assert issue.is_date and issue.number_format == DATE_FORMAT
    assert issue.value.date() == rows[0].issue_date == date(2026, 1, 1)
    frame = pd.read_excel(path)
    for title, attribute in [("Subtotal", "subtotal"), ("Tax", "tax"), ("Total", "total"), ("Paid", "paid"),
                             ("Outstanding", "outstanding")]:
        read = [ledger_decimal(x) for x in frame[title]]
        assert read == [getattr(r, attribute) for r in rows], title
        assert sum(read) == sum((getattr(r, attribute) for r in rows), Decimal(0)), title
    assert list(frame["Due status"][:2]) == ["Not due", "Overdue"]


def test_amount_and_date_columns_are_typed_in_every_column_set():
    for columns in (BALANCE_DETAIL_COLUMNS, BILL_DETAIL_COLUMNS, INVOICE_REPORT_COLUMNS):
        for column in columns:
            named_like_money = any(w in column.title for w in ("Amount", "amount", "Balance", "total", "Total",
                                                               "Tax", "Paid", "Outstanding", "Subtotal"))
            assert (column.kind is Kind.AMOUNT) == named_like_money, column.title


def openpyxl_temp_files() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "openpyxl.*")))


def test_more_rows_than_the_limit_are_refused_and_leave_no_temporary_file(tmp_path):
    before = openpyxl_temp_files()
    with pytest.raises(ExportTooLarge) as refused:
        write_xlsx(BALANCE_DETAIL_COLUMNS, balance_detail_rows(6), tmp_path / "x.xlsx", max_rows=5)
    assert refused.value.code == "export_too_large"
    assert openpyxl_temp_files() <= before
    with pytest.raises(ValueError):
        write_xlsx(BALANCE_DETAIL_COLUMNS, [], tmp_path / "y.xlsx", max_rows=MAX_EXPORT_ROWS + 1)
    assert MAX_EXPORT_ROWS == 1_048_576 - 1  # Excel's rows, less the header


def test_text_that_looks_like_a_formula_stays_text(tmp_path):
    row = next(balance_detail_rows(1))
    hostile = BalanceDetailRow(**{**{f: getattr(row, f) for f in row.__slots__}, "item": "=HYPERLINK(\"x\")"})
    path = tmp_path / "f.xlsx"
    write_xlsx(BALANCE_DETAIL_COLUMNS, [hostile], path)
    cell = load_workbook(path).active["D2"]
    assert cell.data_type == "s" and cell.value == "=HYPERLINK(\"x\")"


def test_progress_is_reported_for_every_row(tmp_path):
    seen: list[int] = []
    write_xlsx(BALANCE_DETAIL_COLUMNS, balance_detail_rows(2_345), tmp_path / "p.xlsx", progress=seen.append)
    assert sum(seen) == 2_345 and seen == [1000, 1000, 345]
