"""DocumentPDF: an A4 page with the issuer header, running headers, footer and fitted text.

Page breaks are ours, not fpdf2's (auto page break is off): a table asks for a new page
when its next row would cross ``CONTENT_BOTTOM``, so the layout is predictable.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from fpdf import FPDF

from exporters.documents import Issuer, Party
from exporters.pdf import layout as L
from exporters.pdf.fonts import MAIN_FAMILY, install_fonts, needs_shaping

INK = (33, 37, 41)
MUTED = (108, 117, 125)
ACCENT = (31, 56, 100)
RULE = (206, 212, 218)
ELLIPSIS = "…"


class DocumentPDF(FPDF):
    """One document: ``title`` ("BILL") and ``number`` go in the header and every footer."""

    def __init__(self, issuer: Issuer, title: str, number: str, created_at: datetime | None = None) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.issuer = issuer
        self.title_text = title
        self.number = number
        install_fonts(self)
        self.set_margins(L.MARGIN_X, L.TOP_MARGIN, L.MARGIN_X)
        self.set_auto_page_break(False)
        self.set_title(f"{title} {number}")
        self.set_author(issuer.name)
        self.set_creator("ledger exporters")
        # A fixed creation date makes the same document render to the same bytes.
        self.set_creation_date(created_at or datetime(2000, 1, 1, tzinfo=timezone.utc))
        self.content_top = L.TOP_MARGIN

    def _render_styled_text_line(self, *args: Any, **kwargs: Any) -> Any:
        # fpdf2 2.8 bug (py-pdf/fpdf2#1772): after a line that switched to a fallback font
        # (Chinese, Arabic), fpdf2 believes the main font is still selected on the page and
        # leaves out the next "Tf": the following text is drawn in the fallback font with
        # the main font's glyph ids, i.e. garbage. Forgetting the page's font after every
        # line makes fpdf2 select it again. tests/exporters checks the text comes back.
        result = super()._render_styled_text_line(*args, **kwargs)
        self.current_font_is_set_on_page = False
        return result

    # -- page furniture (fpdf2 calls header() and footer() on each page) -------------
    def header(self) -> None:
        if self.page_no() == 1:
            self._issuer_header()
            self.content_top = L.TOP_MARGIN + L.ISSUER_HEADER_HEIGHT
        else:
            self._running_header()
            self.content_top = L.NEXT_PAGE_TABLE_TOP
        self.set_y(self.content_top)

    def footer(self) -> None:
        self.set_draw_color(*RULE)
        self.line(L.MARGIN_X, L.FOOTER_TOP, L.PAGE_WIDTH - L.MARGIN_X, L.FOOTER_TOP)
        self.set_font(MAIN_FAMILY, "", 7.5)
        self.set_text_color(*MUTED)
        self.set_xy(L.MARGIN_X, L.FOOTER_TOP + 1.5)
        self.cell(L.CONTENT_WIDTH / 2, 4, f"{self.issuer.name} · {self.title_text.title()} {self.number}")
        # {nb} is replaced by the page count when the document is closed.
        self.cell(L.CONTENT_WIDTH / 2, 4, f"Page {self.page_no()} of {{nb}}", align="R")

    def _issuer_header(self) -> None:
        issuer, top = self.issuer, L.TOP_MARGIN
        half = L.CONTENT_WIDTH / 2
        self.set_xy(L.MARGIN_X, top)
        self.text_cell(half + 20, 7, issuer.name, size=14, bold=True, color=ACCENT)
        details = [*issuer.address]
        if issuer.tax_id:
            details.append(f"Tax ID: {issuer.tax_id}")
        contact = " · ".join(part for part in (issuer.email, issuer.phone, issuer.website) if part)
        if contact:
            details.append(contact)
        for index, line in enumerate(details):
            self.set_xy(L.MARGIN_X, top + 8 + index * 3.9)
            self.text_cell(half + 20, 3.9, line, size=7.5, color=MUTED)
        self.set_xy(L.MARGIN_X + half, top)
        self.text_cell(half, 9, self.title_text.upper(), size=20, bold=True, color=ACCENT, align="R")
        self.set_xy(L.MARGIN_X + half, top + 10)
        self.text_cell(half, 5, self.number, size=10, bold=True, align="R")
        rule_y = top + L.ISSUER_HEADER_HEIGHT - 3
        self.set_draw_color(*ACCENT)
        self.set_line_width(0.6)
        self.line(L.MARGIN_X, rule_y, L.PAGE_WIDTH - L.MARGIN_X, rule_y)
        self.set_line_width(0.2)

    def _running_header(self) -> None:
        half = L.CONTENT_WIDTH / 2
        self.set_xy(L.MARGIN_X, L.TOP_MARGIN)
        self.text_cell(half, 5, self.issuer.name, size=9, bold=True, color=ACCENT)
        self.text_cell(half, 5, f"{self.title_text.title()} {self.number} (continued)", size=9, color=MUTED, align="R")
        self.set_draw_color(*RULE)
        rule_y = L.TOP_MARGIN + 6.5
        self.line(L.MARGIN_X, rule_y, L.PAGE_WIDTH - L.MARGIN_X, rule_y)

    # -- blocks --------------------------------------------------------------------
    def party_block(self, x: float, y: float, width: float, label: str, party: Party) -> None:
        """The payer's tax block: label, name, organization, tax id, address lines, emails."""
        self.set_xy(x, y)
        self.text_cell(width, L.BLOCK_LINE_HEIGHT, label.upper(), size=7, bold=True, color=MUTED)
        lines = [
            (party.name, True),
            (party.organization, False),
            (f"Tax ID: {party.tax_id}" if party.tax_id else "", False),
            *((line, False) for line in party.address),
            (", ".join(party.emails), False),
        ]
        row = 1
        for text, bold in lines:
            if not text:
                continue
            self.set_xy(x, y + row * L.BLOCK_LINE_HEIGHT)
            self.text_cell(width, L.BLOCK_LINE_HEIGHT, text, size=9.5 if bold else L.BODY_FONT_SIZE, bold=bold)
            row += 1

    def details_block(self, x: float, y: float, width: float, pairs: list[tuple[str, str]]) -> None:
        """Label: value rows, labels muted on the left, values on the right."""
        label_width = width * 0.38
        for index, (label, value) in enumerate(pairs[: L.DETAIL_LINES]):
            self.set_xy(x, y + index * L.BLOCK_LINE_HEIGHT)
            self.text_cell(label_width, L.BLOCK_LINE_HEIGHT, label, size=L.BODY_FONT_SIZE, color=MUTED)
            self.text_cell(width - label_width, L.BLOCK_LINE_HEIGHT, value, size=L.BODY_FONT_SIZE, bold=True,
                           align="R")

    def section_title(self, text: str) -> None:
        self.set_x(L.MARGIN_X)
        self.text_cell(L.CONTENT_WIDTH, 7, text, size=10, bold=True, color=ACCENT)
        self.ln(7)

    def ensure_room(self, height: float) -> None:
        """A new page unless ``height`` more millimetres fit above the footer."""
        if self.get_y() + height > L.CONTENT_BOTTOM:
            self.add_page()

    # -- text ----------------------------------------------------------------------
    def text_cell(self, width: float, height: float, text: str, *, size: float = L.BODY_FONT_SIZE,
                  bold: bool = False, color: tuple[int, int, int] = INK, align: str = "L",
                  fill: bool = False) -> None:
        """One line in a box: shrunk down to MIN_FONT_SIZE, then cut with an ellipsis, so it
        never spills into the next column (a long name must not hide an amount)."""
        self.set_text_color(*color)
        self._shape_if_needed(text)
        fitted, fitted_size = self._fit(text, width - 2 * L.CELL_PADDING, size, bold)
        self.set_font(MAIN_FAMILY, "B" if bold else "", fitted_size)
        self.cell(width, height, fitted, align=align, fill=fill)

    def _shape_if_needed(self, text: str) -> None:
        shaping = needs_shaping(text)
        if shaping != bool(self.text_shaping):
            self.set_text_shaping(shaping)

    def _fit(self, text: str, room: float, size: float, bold: bool) -> tuple[str, float]:
        style = "B" if bold else ""
        self.set_font(MAIN_FAMILY, style, size)
        width = self.get_string_width(text)
        if width <= room:
            return text, size
        smaller = max(L.MIN_FONT_SIZE, size * room / width)
        self.set_font(MAIN_FAMILY, style, smaller)
        if self.get_string_width(text) <= room:
            return text, smaller
        cut = len(text)
        while cut > 0 and self.get_string_width(text[:cut] + ELLIPSIS) > room:
            cut -= max(1, (cut // 8))
        return text[:cut] + ELLIPSIS, smaller
