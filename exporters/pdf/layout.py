"""Page geometry shared by every document, in millimetres on A4 portrait.

Row heights and block heights are fixed, so the number of pages a document takes follows
from its line count alone (``table_pages``); tests check a rendered bill against it.
"""

from __future__ import annotations

import math

PAGE_WIDTH = 210.0
PAGE_HEIGHT = 297.0
MARGIN_X = 15.0
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN_X
TOP_MARGIN = 12.0

# Page 1: the issuer header; later pages: a one-line running header.
ISSUER_HEADER_HEIGHT = 34.0
RUNNING_HEADER_HEIGHT = 10.0
NEXT_PAGE_TABLE_TOP = TOP_MARGIN + RUNNING_HEADER_HEIGHT

# The party ("Bill to") block and the details block sit side by side under the header,
# BLOCK_LINES high whatever they hold, so the line table always starts at the same place.
PARTY_LINES = 9  # label, name, organization, tax id, 4 address lines, emails
DETAIL_LINES = 11  # label: value rows
BLOCK_LINES = max(PARTY_LINES, DETAIL_LINES)
BLOCK_LINE_HEIGHT = 4.3
BLOCK_HEIGHT = BLOCK_LINES * BLOCK_LINE_HEIGHT + 4.0
FIRST_PAGE_TABLE_TOP = TOP_MARGIN + ISSUER_HEADER_HEIGHT + BLOCK_HEIGHT + 4.0

TABLE_HEADER_HEIGHT = 7.0
ROW_HEIGHT = 5.5
FOOTER_TOP = PAGE_HEIGHT - 14.0
CONTENT_BOTTOM = FOOTER_TOP - 3.0  # nothing is drawn below this but the footer

BODY_FONT_SIZE = 8.5
TABLE_FONT_SIZE = 8.0
MIN_FONT_SIZE = 6.0  # text shrinks to this before it is cut with an ellipsis
CELL_PADDING = 1.2

# Room the totals block takes after the last table row; it moves to a new page if short.
TOTALS_ROW_HEIGHT = 6.0

# Floating-point slack when comparing positions built from these constants.
_EPSILON = 1e-6


def rows_that_fit(table_top: float) -> int:
    """How many table rows fit on a page whose table header starts at ``table_top``."""
    room = CONTENT_BOTTOM - (table_top + TABLE_HEADER_HEIGHT)
    return math.floor(room / ROW_HEIGHT + _EPSILON)


def table_pages(line_count: int, first_table_top: float = FIRST_PAGE_TABLE_TOP) -> int:
    """Pages a table of ``line_count`` rows takes (at least one: an empty table still has a header)."""
    first = rows_that_fit(first_table_top)
    if line_count <= first:
        return 1
    return 1 + math.ceil((line_count - first) / rows_that_fit(NEXT_PAGE_TABLE_TOP))
