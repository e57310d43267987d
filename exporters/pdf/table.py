"""A line table that breaks across pages and repeats its header row on each one."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from exporters.pdf import layout as L
from exporters.pdf.canvas import ACCENT, RULE, DocumentPDF

HEADER_TEXT = (255, 255, 255)
STRIPE = (244, 246, 249)


@dataclass(frozen=True)
class TableColumn:
    title: str
    width: float  # fraction of the content width; a table's fractions add up to 1
    align: str = "L"  # numbers are "R"


class LineTable:
    def __init__(self, pdf: DocumentPDF, columns: Sequence[TableColumn]) -> None:
        total = sum(column.width for column in columns)
        if abs(total - 1) > 1e-9:
            raise ValueError(f"column widths add up to {total}, not 1")
        self.pdf = pdf
        self.columns = columns
        self.widths = [column.width * L.CONTENT_WIDTH for column in columns]

    def draw(self, rows: Iterable[Sequence[str]]) -> None:
        """The header at the current position, then each row; a row that would cross the
        page bottom starts a new page with the header again."""
        self.draw_header()
        for index, row in enumerate(rows):
            if self.pdf.get_y() + L.ROW_HEIGHT > L.CONTENT_BOTTOM + 1e-6:
                self.pdf.add_page()
                self.draw_header()
            self._draw_row(row, striped=index % 2 == 1)

    def draw_header(self) -> None:
        pdf = self.pdf
        pdf.set_x(L.MARGIN_X)
        pdf.set_fill_color(*ACCENT)
        for column, width in zip(self.columns, self.widths):
            pdf.text_cell(width, L.TABLE_HEADER_HEIGHT, column.title, size=L.TABLE_FONT_SIZE, bold=True,
                          color=HEADER_TEXT, align=column.align, fill=True)
        pdf.ln(L.TABLE_HEADER_HEIGHT)

    def _draw_row(self, values: Sequence[str], *, striped: bool) -> None:
        pdf = self.pdf
        pdf.set_x(L.MARGIN_X)
        pdf.set_fill_color(*STRIPE)
        for column, width, value in zip(self.columns, self.widths, values):
            pdf.text_cell(width, L.ROW_HEIGHT, value, size=L.TABLE_FONT_SIZE, align=column.align, fill=striped)
        pdf.ln(L.ROW_HEIGHT)
        pdf.set_draw_color(*RULE)
        y = pdf.get_y()
        pdf.line(L.MARGIN_X, y, L.MARGIN_X + L.CONTENT_WIDTH, y)


def totals_block(pdf: DocumentPDF, rows: Sequence[tuple[str, str, bool]]) -> None:
    """Label / value rows on the right half, after the table; ``bold`` marks the grand total."""
    pdf.ensure_room(totals_height(len(rows)))
    pdf.ln(3)
    label_x = L.MARGIN_X + L.CONTENT_WIDTH * 0.5
    label_width, value_width = L.CONTENT_WIDTH * 0.25, L.CONTENT_WIDTH * 0.25
    for label, value, bold in rows:
        pdf.set_x(label_x)
        if bold:
            pdf.set_draw_color(*ACCENT)
            y = pdf.get_y()
            pdf.line(label_x, y, L.MARGIN_X + L.CONTENT_WIDTH, y)
        pdf.text_cell(label_width, L.TOTALS_ROW_HEIGHT, label, size=9, bold=bold)
        pdf.text_cell(value_width, L.TOTALS_ROW_HEIGHT, value, size=10 if bold else 9, bold=bold, align="R")
        pdf.ln(L.TOTALS_ROW_HEIGHT)


def totals_height(row_count: int) -> float:
    """The room a totals block of ``row_count`` rows needs (a gap above it included)."""
    return row_count * L.TOTALS_ROW_HEIGHT + 4
