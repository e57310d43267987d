"""Excel (.xlsx) exports in bounded memory: openpyxl's write-only mode.

Rows come from an iterator and go to a temporary file as they are appended, so memory does
not grow with the row count. (pandas' ``to_excel`` would need the whole frame in memory and
openpyxl's normal mode keeps every cell; pandas reads the files back in the tests.)

Amounts are numeric cells holding the stored ``Decimal``'s exact text (see _fill_number);
a reader's double quantized to 6 places gives back the same value.
Times are real datetime cells in UTC to the millisecond (Excel has no time zones and no
finer times), dates are date cells.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from exporters.columns import Column, Kind
from exporters.limits import MAX_EXPORT_ROWS, counted

AMOUNT_FORMAT = "#,##0.00####;[Red]-#,##0.00####"  # 2 to 6 places, DR in red
QUANTITY_FORMAT = "#,##0.######"
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
_FORMATS = {Kind.AMOUNT: AMOUNT_FORMAT, Kind.QUANTITY: QUANTITY_FORMAT, Kind.DATE: DATE_FORMAT,
            Kind.DATETIME: DATETIME_FORMAT}
_HEADER_FONT = Font(bold=True, color="FFFFFF")
_HEADER_FILL = PatternFill("solid", fgColor="1F3864")
MAX_SHEET_TITLE = 31  # Excel's limit
PROGRESS_EVERY = 1000  # rows between progress reports


def write_xlsx(
    columns: Sequence[Column[Any]],
    rows: Iterable[Any],
    target: str | Path | IO[bytes],
    *,
    sheet_title: str = "Export",
    max_rows: int = MAX_EXPORT_ROWS,
    progress: Callable[[int], object] | None = None,
) -> int:
    """Writes a header row and one row per item of ``rows``; returns the data row count.

    More than ``max_rows`` rows raise ExportTooLarge (the target is then incomplete: the
    caller discards it). ``progress`` is told how many rows were added, now and then.
    """
    if not 1 <= max_rows <= MAX_EXPORT_ROWS:
        raise ValueError(f"max_rows must be 1..{MAX_EXPORT_ROWS:,}")
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_title[:MAX_SHEET_TITLE])
    _prepare_sheet(sheet, columns)
    sheet.append(_header_cells(sheet, columns))
    try:
        count = _append_rows(sheet, columns, rows, max_rows, progress)
    except BaseException:
        _discard(sheet)
        raise
    # The filter range is only known now; write-only sheets write it after the rows.
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{count + 1}"
    workbook.save(target)
    return count


def _append_rows(sheet: WriteOnlyWorksheet, columns: Sequence[Column[Any]], rows: Iterable[Any], max_rows: int,
                 progress: Callable[[int], object] | None) -> int:
    cell_makers = [_cell_maker(sheet, column) for column in columns]
    count = 0
    for count, row in counted(rows, max_rows):
        sheet.append([make(row) for make in cell_makers])
        if progress and count % PROGRESS_EVERY == 0:
            progress(PROGRESS_EVERY)
    if progress and count % PROGRESS_EVERY:
        progress(count % PROGRESS_EVERY)
    return count


def _discard(sheet: WriteOnlyWorksheet) -> None:
    """Ends a sheet given up half way and deletes its temporary file now: openpyxl would
    keep the file until the process exits (a server lives long) and complain when the
    half-written stream is garbage collected."""
    sheet.close()
    writer = sheet._writer  # openpyxl has no public way to drop a write-only sheet's file
    if writer is not None and isinstance(writer.out, str):
        writer.cleanup()


def _prepare_sheet(sheet: WriteOnlyWorksheet, columns: Sequence[Column[Any]]) -> None:
    # Write-only sheets write views and column widths before the first row: set them now.
    sheet.freeze_panes = "A2"
    for index, column in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = column.width


def _header_cells(sheet: WriteOnlyWorksheet, columns: Sequence[Column[Any]]) -> list[WriteOnlyCell]:
    cells = []
    for column in columns:
        cell = WriteOnlyCell(sheet, value=column.title)
        cell.font = _HEADER_FONT
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(horizontal="right" if column.kind in (Kind.AMOUNT, Kind.QUANTITY) else "left")
        cells.append(cell)
    return cells


def _cell_maker(sheet: WriteOnlyWorksheet, column: Column[Any]) -> Callable[[Any], Any]:
    """A function from a row to this column's cell: plain values for text, formatted cells
    for numbers and dates.

    A formatted cell is made once per column and refilled for every row: a write-only
    sheet serialises a row as soon as it is appended, and making and styling a new cell per
    value was most of the time spent.
    """
    read = column.value
    if column.kind is Kind.TEXT:
        return lambda row: _text_cell(sheet, read(row))
    cell = WriteOnlyCell(sheet)
    cell.number_format = _FORMATS[column.kind]
    if column.kind in (Kind.AMOUNT, Kind.QUANTITY):
        def number(row: Any) -> WriteOnlyCell:
            _fill_number(cell, read(row))
            return cell
        return number

    def time(row: Any) -> WriteOnlyCell:
        cell.value = _excel_time(read(row))
        return cell

    return time


def _fill_number(cell: WriteOnlyCell, number: Decimal | None) -> None:
    """Makes ``cell`` a number whose XML holds the Decimal's exact text ("-1610.815440").

    Given a Decimal, openpyxl would write "%.16g" of a float of it, which is wrong in the
    6th place from 10^9 up. As text typed "n", the file keeps the stored value; a reader
    gets the double nearest to it, which quantized to 6 places is the stored value again
    for every amount below 2^31 (about 2.1 billion); the CSV export is exact at any size.
    """
    if number is None:
        cell.value = None
        return
    if not number.is_finite():
        raise ValueError(f"not a finite number: {number}")
    cell.value = format(number, "f")
    cell.data_type = "n"


def _text_cell(sheet: WriteOnlyWorksheet, value: Any) -> Any:
    text = "" if value is None else str(value)
    if ILLEGAL_CHARACTERS_RE.search(text):
        # XML cannot hold most control characters. The ledger refuses them on input, but a
        # value stored before it did must not make every export of its account fail.
        text = ILLEGAL_CHARACTERS_RE.sub("\ufffd", text)
    if not text.startswith("="):
        return text
    # openpyxl would store "=..." as a formula (a customer-typed name could run as one):
    # force the cell to be a string.
    cell = WriteOnlyCell(sheet, value=text)
    cell.data_type = "s"
    return cell


def _excel_time(moment: datetime | date | None) -> datetime | date | None:
    """UTC without a zone (Excel has none), cut to the millisecond: an Excel time is a
    fraction of a day that holds no finer (the CSV keeps the microseconds)."""
    if isinstance(moment, datetime):
        if moment.tzinfo is not None:
            moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    return moment
