"""CSV exports: the same columns as the Excel ones, streamed as text chunks.

Amounts are plain, exact decimal strings ("-1610.815440" is "-1610.81544"), never floats or
thousands separators; times are ISO 8601 UTC with a "Z"; dates are ISO dates.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime, timezone
from typing import IO, Any

from exporters.columns import Column, Kind
from exporters.limits import CSV_ROWS_PER_CHUNK, MAX_EXPORT_ROWS, counted
from ledger_core.money import format_amount

# A spreadsheet opening the CSV would run a text cell starting with one of these as a
# formula: such text gets a leading apostrophe (the usual defence; amounts are never touched).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_chunks(
    columns: Sequence[Column[Any]],
    rows: Iterable[Any],
    *,
    max_rows: int = MAX_EXPORT_ROWS,
    rows_per_chunk: int = CSV_ROWS_PER_CHUNK,
    progress: Callable[[int], object] | None = None,
) -> Iterator[str]:
    """The header line, then the rows, as chunks of text of at most ``rows_per_chunk`` rows.

    Past ``max_rows`` rows it raises ExportTooLarge: a stream already under way then ends
    unfinished, which an HTTP client sees as a broken download, never as a complete file.
    """
    if not 1 <= max_rows <= MAX_EXPORT_ROWS:
        raise ValueError(f"max_rows must be 1..{MAX_EXPORT_ROWS:,}")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180
    writer.writerow([column.title for column in columns])
    formatters = [_formatter(column) for column in columns]
    count = 0
    for count, row in counted(rows, max_rows):
        writer.writerow([format_value(row) for format_value in formatters])
        if count % rows_per_chunk == 0:
            yield _drain(buffer)
            if progress:
                progress(rows_per_chunk)
    rest = _drain(buffer)
    if rest:  # an empty chunk could read as the end of a chunked HTTP body
        yield rest
    if progress and count % rows_per_chunk:
        progress(count % rows_per_chunk)


def write_csv(columns: Sequence[Column[Any]], rows: Iterable[Any], out: IO[str], **options: Any) -> int:
    """Writes the chunks to a text file (opened with newline=""); returns the data row count."""
    count = 0

    def counted(rows_: Iterable[Any]) -> Iterator[Any]:
        nonlocal count
        for row in rows_:
            count += 1
            yield row

    for chunk in csv_chunks(columns, counted(rows), **options):
        out.write(chunk)
    return count


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def _formatter(column: Column[Any]) -> Callable[[Any], str]:
    read = column.value
    format_one = _BY_KIND[column.kind]
    return lambda row: format_one(read(row))


def _text(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _amount(value: Any) -> str:
    return "" if value is None else format_amount(value)


def _quantity(value: Any) -> str:
    return "" if value is None else f"{value.normalize():f}"


def _date(value: date | None) -> str:
    return "" if value is None else value.isoformat()


def _datetime(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


_BY_KIND: dict[Kind, Callable[[Any], str]] = {
    Kind.TEXT: _text, Kind.AMOUNT: _amount, Kind.QUANTITY: _quantity, Kind.DATE: _date,
    Kind.DATETIME: _datetime,
}
