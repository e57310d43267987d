"""Reading what an export or a sweep goes through (balance details, bills, invoices, orders,
subscriptions), page by page.

The rows are read in bounded pages (never the whole result at once), newest first like the
list endpoint; paging by position keeps later bookings out of an export under way.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import IO, Any, TypeVar

from exporters.columns import Column
from exporters.excel import write_xlsx
from exporters.limits import MAX_EXPORT_ROWS
from projections.bills import BillFilter, BillRow
from projections.orders import OrderFilter, OrderRow
from projections.rows import InvoiceFilter, InvoiceRow, TransactionFilter, TransactionRow
from projections.subscriptions import SubscriptionFilter, SubscriptionRow
from projections.views import MAX_PAGE_ROWS
from service.ledger_service import LedgerService

EXPORT_PAGE_ROWS = MAX_PAGE_ROWS  # rows per read: the largest page the read model serves
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx_file(columns: Sequence[Column[Any]], rows: Iterable[Any], sheet_title: str,
              max_rows: int = MAX_EXPORT_ROWS) -> IO[bytes]:
    """A workbook of ``rows``, in a temporary file read from its start: built on disk (a zip
    is only valid once closed) so memory stays flat; errors (too many rows) come before any
    byte of it is sent. The caller closes it (a download closes it once sent)."""
    workbook = tempfile.TemporaryFile()
    try:
        write_xlsx(columns, rows, workbook, sheet_title=sheet_title, max_rows=max_rows)
    except BaseException:
        workbook.close()
        raise
    workbook.seek(0)
    return workbook


def safe_file_name(name: str, extension: str) -> str:
    """A download's file name from client text (account ids, numbers): plain ASCII for the header."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:100] or "export"
    return f"{safe}.{extension}"


Q = TypeVar("Q", TransactionFilter, BillFilter, InvoiceFilter, OrderFilter, SubscriptionFilter)
R = TypeVar("R")


def _pages(read_page: Callable[[Q, int], tuple[list[R], int | None]], query: Q, page_rows: int) -> Iterator[R]:
    """Every row ``read_page`` finds for ``query``, one bounded page at a time: each page
    starts before the last position of the previous one, so rows booked meanwhile stay out."""
    page_query = query
    while True:
        rows, next_position = read_page(page_query, page_rows)
        yield from rows
        if next_position is None:
            return
        page_query = replace(query, before_position=next_position)


def iter_transactions(service: LedgerService, query: TransactionFilter,
                      page_rows: int = EXPORT_PAGE_ROWS) -> Iterator[TransactionRow]:
    """Every balance-detail row matching ``query``, newest first.

    Raises AccountNotFound before yielding anything if the account does not exist. The
    caller bounds the total (see exporters.limits); stop iterating to stop reading.
    """
    service.account_row(query.account_id)

    def page(q: TransactionFilter, limit: int) -> tuple[list[TransactionRow], int | None]:
        result = service.view.transactions(q, limit=limit)
        return result.rows, result.next_before_position

    return _pages(page, query, page_rows)


def iter_bills(service: LedgerService, query: BillFilter, page_rows: int = EXPORT_PAGE_ROWS) -> Iterator[BillRow]:
    """Every bill matching ``query``, newest first."""
    return _pages(service.view.bills, query, page_rows)


def iter_invoices(service: LedgerService, query: InvoiceFilter,
                  page_rows: int = EXPORT_PAGE_ROWS) -> Iterator[InvoiceRow]:
    """Every invoice matching ``query``, newest first."""
    return _pages(service.view.invoices, query, page_rows)


def iter_orders(service: LedgerService, query: OrderFilter, page_rows: int = EXPORT_PAGE_ROWS) -> Iterator[OrderRow]:
    """Every order matching ``query``, newest first."""
    return _pages(service.view.orders, query, page_rows)


def iter_subscriptions(service: LedgerService, query: SubscriptionFilter,
                       page_rows: int = EXPORT_PAGE_ROWS) -> Iterator[SubscriptionRow]:
    """Every subscription matching ``query`` (deleted ones left out), newest first."""
    return _pages(service.view.subscriptions, query, page_rows)
