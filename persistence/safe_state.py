"""The last check before an event is stored: no string in it holds a character the
ledger refuses (ledger_core/text.py), whatever edge or bug let it through. One such event
would otherwise be stored for good and stop every projection on PostgreSQL.

Checked on the encoded state, where json.dumps has written C0 controls as escapes
(\\u0000, and \\b, \\f) and left DEL and the C1 controls as raw UTF-8; tab, line feed and
carriage return are allowed at this layer (free text may hold them). A lone surrogate
cannot reach here: UTF-8 encoding of the state fails first."""

from __future__ import annotations

import re
from collections.abc import Sequence

from eventsourcing.persistence import StoredEvent

from ledger_core.errors import UnsafeText

# An escape is one only after an even number of backslashes ("\\\\u0000" is text).
_ESCAPED_CONTROL = re.compile(rb"(?<!\\)(?:\\\\)*\\(?:u00[01][0-9a-fA-F]|u007[fF]|[bf])")
_RAW_CONTROL = re.compile(rb"\x7f|\xc2[\x80-\x9f]")


def refuse_unsafe_text(stored_events: Sequence[StoredEvent]) -> None:
    for stored in stored_events:
        state = stored.state
        if b"\\" in state and _ESCAPED_CONTROL.search(state) or _RAW_CONTROL.search(state):
            raise UnsafeText("a text field holds a control character; nothing was stored",
                             topic=stored.topic.rsplit(".", 1)[-1])
