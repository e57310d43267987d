"""The fonts every document embeds (subset to the glyphs used), shipped in ``fonts/``.

Noto Sans (Latin, Greek, Cyrillic, incl. Turkish) is the main face; Noto Sans Arabic,
Hebrew and Thai and Droid Sans Fallback (CJK) are fallbacks that fpdf2 switches to per
character. A character no face has (emoji, say) is left out, with a warning from fpdf2. Arabic needs
text shaping (joining forms, right-to-left order): fpdf2 does it with uharfbuzz, turned on
line by line for the text that needs it (``needs_shaping``).
Licenses: fonts/OFL.txt (Noto), fonts/LICENSE-DroidSansFallback.txt (Apache 2.0).
"""

from __future__ import annotations

import re
from pathlib import Path

from fpdf import FPDF

FONT_DIR = Path(__file__).parent / "fonts"
MAIN_FAMILY = "NotoSans"

_FACES = {
    # family: {style: file}
    MAIN_FAMILY: {"": "NotoSans-Regular.ttf", "B": "NotoSans-Bold.ttf"},
    "NotoSansArabic": {"": "NotoSansArabic-Regular.ttf", "B": "NotoSansArabic-Bold.ttf"},
    "NotoSansHebrew": {"": "NotoSansHebrew-Regular.ttf", "B": "NotoSansHebrew-Bold.ttf"},
    "NotoSansThai": {"": "NotoSansThai-Regular.ttf", "B": "NotoSansThai-Bold.ttf"},
    "DroidSansFallback": {"": "DroidSansFallback.ttf"},  # no bold face: bold CJK prints regular
}
FALLBACK_FAMILIES = ["NotoSansArabic", "NotoSansHebrew", "NotoSansThai", "DroidSansFallback"]


def install_fonts(pdf: FPDF) -> None:
    """Registers the shipped faces on a document and turns on fallback and shaping."""
    for family, styles in _FACES.items():
        for style, filename in styles.items():
            pdf.add_font(family, style, str(FONT_DIR / filename))
    # exact_match=False: a bold run of Chinese falls back to the regular CJK face
    # rather than to nothing.
    pdf.set_fallback_fonts(FALLBACK_FAMILIES, exact_match=False)


# Scripts whose letters change shape with their neighbours or run right to left: Hebrew to
# Mongolian (U+0590-U+1CFF: Arabic, Syriac, Indic, Thai, Tibetan, Myanmar, Khmer...),
# Devanagari extended and friends, and the Hebrew/Arabic presentation forms. Latin, Greek,
# Cyrillic and CJK need no shaping.
_NEEDS_SHAPING = re.compile("[\u0590-\u1cff\ua800-\uabff\ufb1d-\ufdff\ufe70-\ufeff]")


def needs_shaping(text: str) -> bool:
    """Shaping (harfbuzz, bidi) triples the time to set a line: only text that needs it gets it."""
    return _NEEDS_SHAPING.search(text) is not None
