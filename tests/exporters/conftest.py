from __future__ import annotations

import io

from pypdf import PdfReader


def pdf_pages(content: bytes) -> list[list[str]]:
    """Each page's extracted text as stripped, non-empty lines."""
    reader = PdfReader(io.BytesIO(content))
    return [[line.strip() for line in page.extract_text().splitlines() if line.strip()] for page in reader.pages]
