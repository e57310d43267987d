"""Hard limits of the tabular exports, and the error for going past them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from ledger_core.errors import LedgerError

Row = TypeVar("Row")

# An Excel sheet holds 1,048,576 rows; one is the header. CSV keeps the same cap so the two
# formats of one export always hold the same rows.
MAX_EXPORT_ROWS = 1_048_575
# Rows per chunk of streamed CSV text: big enough to amortise the write, small enough
# that a chunk stays well under a megabyte.
CSV_ROWS_PER_CHUNK = 500


class ExportTooLarge(LedgerError):
    """More rows than one export may hold: narrow the filters (a time range, say)."""

    code = "export_too_large"
    category = "rule"


def counted(rows: Iterable[Row], max_rows: int) -> Iterator[tuple[int, Row]]:
    """Each row with its 1-based count; past ``max_rows`` rows, ExportTooLarge."""
    for count, row in enumerate(rows, start=1):
        if count > max_rows:
            raise ExportTooLarge(f"the export has more than {max_rows:,} rows: narrow the filters", max_rows=max_rows)
        yield count, row
