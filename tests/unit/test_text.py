"""ledger_core/text.py: which characters stored text may hold, checked one by one."""

from __future__ import annotations

from ledger_core.text import unsafe_character

TAB_AND_LINE_BREAKS = {"\t", "\n", "\r"}


def refused(char: str, one_line: bool) -> bool:
    """The rule as the module's docstring states it."""
    code = ord(char)
    control = code < 0x20 or 0x7F <= code <= 0x9F
    if char in TAB_AND_LINE_BREAKS and not one_line:
        control = False
    return control or 0xD800 <= code <= 0xDFFF


def test_every_character_below_u_3000_and_every_surrogate_alone_and_inside_ordinary_text():
    chars = [chr(c) for c in range(0x3000)] + [chr(c) for c in range(0xD800, 0xE000)]
    chars += [chr(c) for c in (0xFEFF, 0xFFFD, 0xFFFF, 0x1F600, 0x10FFFF)]
    for char in chars:
        for one_line in (True, False):
            for text in (char, f"acme {char}", f"{char} sms-1"):
                assert (unsafe_character(text, one_line=one_line) is not None) == refused(char, one_line), \
                    (hex(ord(char)), one_line, text)


def test_the_description_names_the_character_and_where_it_stands():
    assert unsafe_character("ab\x00c") == "a control character (U+0000) at position 2"
    assert unsafe_character("a\ud800") == "a lone surrogate (U+D800) at position 1"
    assert unsafe_character("tab\there", one_line=False) is None
