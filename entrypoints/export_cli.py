"""`ledger export ...`: write an export to a file, with a progress bar.

`transactions`, `bills` and `invoices`: the same columns and filters as the HTTP exports.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from entrypoints.process import open_service
from exporters.columns import BALANCE_DETAIL_COLUMNS, BILL_DETAIL_COLUMNS, INVOICE_REPORT_COLUMNS, Column
from exporters.csv_export import write_csv
from exporters.excel import write_xlsx
from ledger_core.errors import LedgerError
from ledger_core.invoicing import DueStatus, InvoiceStatus, PaymentStatus
from projections.bills import CLEARED, PENDING, BillFilter
from projections.rows import InvoiceFilter, MovementType, TransactionFilter
from service.documents import (
    account_days,
    account_zones,
    balance_detail_rows,
    bill_detail_rows,
    invoice_report_rows,
)
from service.exports import iter_invoices, iter_transactions
from service.settings import Settings

FORMATS = ("xlsx", "csv")


def _aware_time(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 time: {value}") from None
    if moment.tzinfo is None:
        raise click.BadParameter("give the time with an offset, e.g. 2026-11-01T00:00:00+00:00")
    return moment


@click.group()
def export() -> None:
    """Exports to files (Excel or CSV), the same columns and filters as over HTTP."""


@export.command("transactions")
@click.option("--account", "account_id", required=True, help="The account whose balance details to export.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "file_format", type=click.Choice(FORMATS), default=None,
              help="xlsx or csv [default: from the --out suffix, else xlsx].")
@click.option("--type", "movement_type", type=click.Choice([t.value for t in MovementType]), default=None)
@click.option("--product", default=None)
@click.option("--from", "booked_from", callback=_aware_time, default=None, help="Booked at or after (ISO 8601).")
@click.option("--to", "booked_to", callback=_aware_time, default=None, help="Booked before (ISO 8601).")
def export_transactions(account_id: str, out_path: Path, file_format: str | None, movement_type: str | None,
                        product: str | None, booked_from: datetime | None, booked_to: datetime | None) -> None:
    """An account's balance details (newest first) to an .xlsx or .csv file."""
    query = TransactionFilter(account_id=account_id, type=movement_type, product=product,
                              booked_from=booked_from, booked_to=booked_to)
    service = open_service(Settings.from_env())
    try:
        currency = service.account_row(account_id).currency
        rows = balance_detail_rows(iter_transactions(service, query), currency)
        count, chosen = write_export(BALANCE_DETAIL_COLUMNS, rows, out_path, file_format,
                                     sheet_title="Balance details", description=f"exporting {account_id}")
    except LedgerError as error:
        raise click.ClickException(f"{error.code}: {error.message}") from None
    finally:
        service.close()
    click.echo(f"exported {count} rows of {account_id} to {out_path} ({chosen})")


def write_export(columns: Sequence[Column[Any]], rows: Iterable[Any], out_path: Path, file_format: str | None, *,
                 sheet_title: str, description: str) -> tuple[int, str]:
    """Writes ``rows`` to ``out_path`` as xlsx or csv (``None``: from the suffix, else xlsx)
    with a progress bar on stderr; returns the row count and the format. A refused export
    (LedgerError) exits with its code and message and leaves no file."""
    chosen = file_format or (out_path.suffix.lstrip(".").lower() if out_path.suffix.lower() in (".xlsx", ".csv")
                             else "xlsx")
    try:
        with tqdm(desc=description, unit=" rows", file=sys.stderr) as bar:
            count = _write_atomically(out_path, lambda path: _write(chosen, columns, rows, path, sheet_title,
                                                                    bar.update))
    except LedgerError as error:
        raise click.ClickException(f"{error.code}: {error.message}") from None
    return count, chosen


def _write(file_format: str, columns: Sequence[Column[Any]], rows: Iterable[Any], path: Path, sheet_title: str,
           progress: Callable[[int], object]) -> int:
    if file_format == "xlsx":
        return write_xlsx(columns, rows, path, sheet_title=sheet_title, progress=progress)
    with path.open("w", encoding="utf-8", newline="") as out:
        return write_csv(columns, rows, out, progress=progress)


def _write_atomically(out_path: Path, write: Callable[[Path], int]) -> int:
    """Writes next to the target and renames: a failed export leaves no half file behind."""
    partial = out_path.with_name(f".{out_path.name}.partial")
    try:
        count = write(partial)
        os.replace(partial, out_path)
    finally:
        partial.unlink(missing_ok=True)
    return count


@export.command("bills")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "file_format", type=click.Choice(FORMATS), default=None)
@click.option("--account", "account_id", default=None)
@click.option("--product", default=None)
@click.option("--status", type=click.Choice([PENDING, CLEARED]), default=None)
@click.option("--cycle-from", callback=_aware_time, default=None, help="Cycles starting at or after (ISO 8601).")
@click.option("--cycle-to", callback=_aware_time, default=None, help="Cycles starting before (ISO 8601).")
def export_bills(out_path: Path, file_format: str | None, account_id: str | None, product: str | None,
                 status: str | None, cycle_from: datetime | None, cycle_to: datetime | None) -> None:
    """Bill details (one row per application and AppKey of each bill) to an .xlsx or .csv file."""
    query = BillFilter(account_id=account_id, product=product, status=status, cycle_from=cycle_from,
                       cycle_to=cycle_to)
    service = open_service(Settings.from_env())
    try:
        count, chosen = write_export(BILL_DETAIL_COLUMNS, bill_detail_rows(service, query), out_path, file_format,
                                     sheet_title="Bill details", description="exporting bills")
    finally:
        service.close()
    click.echo(f"exported {count} bill rows to {out_path} ({chosen})")


@export.command("invoices")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "file_format", type=click.Choice(FORMATS), default=None)
@click.option("--account", "account_id", default=None)
@click.option("--status", type=click.Choice([s.value for s in InvoiceStatus]), default=None)
@click.option("--payment-status", type=click.Choice([s.value for s in PaymentStatus]), default=None)
@click.option("--due-status", type=click.Choice([s.value for s in DueStatus]), default=None)
def export_invoices(out_path: Path, file_format: str | None, account_id: str | None, status: str | None,
                    payment_status: str | None, due_status: str | None) -> None:
    """The invoice report to an .xlsx or .csv file."""
    service = open_service(Settings.from_env())
    today = service.now_for(account_id).date()
    query = InvoiceFilter(account_id=account_id, status=status, payment_status=payment_status,
                          due_status=due_status, today=today.isoformat())
    try:
        rows = invoice_report_rows(iter_invoices(service, query), account_days(service), account_zones(service))
        count, chosen = write_export(INVOICE_REPORT_COLUMNS, rows,
                                     out_path, file_format, sheet_title="Invoices", description="exporting invoices")
    finally:
        service.close()
    click.echo(f"exported {count} invoices to {out_path} ({chosen})")
