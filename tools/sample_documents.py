"""Writes a sample bill, invoice and receipt (Chinese, Turkish and Arabic names) to a folder,
to look at with tools/render_pdf_page.sh. Usage: .venv/bin/python tools/sample_documents.py OUT_DIR [LINES]"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project root, for tests.exporters

from exporters.pdf import render_bill_pdf, render_invoice_pdf, render_receipt_pdf  # noqa: E402
from tests.exporters.samples import ISSUER, sample_bill, sample_invoice, sample_receipt  # noqa: E402


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "var/samples")
    lines = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    folder.mkdir(parents=True, exist_ok=True)
    documents = {
        "bill.pdf": render_bill_pdf(sample_bill(lines), ISSUER),
        "invoice.pdf": render_invoice_pdf(sample_invoice(), ISSUER),
        "receipt.pdf": render_receipt_pdf(sample_receipt("payment"), ISSUER),
    }
    for name, content in documents.items():
        (folder / name).write_bytes(content)
        print(folder / name)


if __name__ == "__main__":
    main()
