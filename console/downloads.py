"""Downloads the pages offer: PDF documents and Excel workbooks, as attachments."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from io import BytesIO
from typing import Any

from flask import Response, send_file

from exporters.columns import Column
from service.exports import XLSX_TYPE, safe_file_name, xlsx_file

PDF_TYPE = "application/pdf"


def pdf(content: bytes, name: str) -> Response:
    return send_file(BytesIO(content), mimetype=PDF_TYPE, as_attachment=True,
                     download_name=safe_file_name(name, "pdf"))


def xlsx(columns: Sequence[Column[Any]], rows: Iterable[Any], name: str, sheet_title: str) -> Response:
    return send_file(xlsx_file(columns, rows, sheet_title), mimetype=XLSX_TYPE, as_attachment=True,
                     download_name=safe_file_name(name, "xlsx"))
