"""What the HTTP server refuses before the application sees a request: its request line,
its header block and how its body is framed. Strict where a lenient reading would let a
proxy in front and this server see two different requests (smuggling): one Content-Length
or one chunked Transfer-Encoding, never both; header names that are tokens; no folded
lines, no control characters, no bare LF. The limits are gunicorn's settings of
`entrypoints/gunicorn_conf.py`; gunicorn's own parser refused the same requests before the
server moved to gevent's WSGI server (entrypoints/http_handler.py), which reads leniently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import BinaryIO

METHOD = re.compile(r"[A-Z][A-Z0-9-]{0,19}\Z")  # GET, POST, ...: what the routes can name
TARGET = re.compile(r"[!-~]+\Z")  # printable ASCII without spaces
VERSIONS = ("HTTP/1.0", "HTTP/1.1")
FIELD = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*\r\n\Z")
FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*\Z")  # visible characters, spaces and tabs


class Refused(ValueError):
    """A request the server answers itself: ``status`` and a message for the client. A
    ValueError, which gevent's WSGI server treats as the client's fault (no traceback)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Limits:
    # gevent reads at most 8,192 bytes of a request line and answers 414 past them itself.
    request_line_bytes: int = 8190
    header_fields: int = 100
    header_field_bytes: int = 8190


def request_line(line: str, limits: Limits) -> tuple[str, str, str]:
    """(method, target, version) of a request line (decoded as latin-1, CRLF included)."""
    ended = line.endswith("\r\n")
    text = line[:-2] if ended else line
    if len(text) > limits.request_line_bytes:
        raise Refused(414, f"the request line is longer than {limits.request_line_bytes} bytes")
    if not ended:
        raise Refused(400, "the request line must end with CRLF")
    words = text.split(" ")
    if len(words) != 3:
        raise Refused(400, "the request line must be: METHOD target HTTP/1.1")
    method, target, version = words
    if not METHOD.match(method):
        raise Refused(400, f"not an HTTP method: {method[:20]!r}")
    if not TARGET.match(target):
        raise Refused(400, "the request target must be printable ASCII (percent-encode the rest)")
    if version not in VERSIONS:
        raise Refused(400, f"HTTP version {version[:20]!r} is not served (HTTP/1.0 and HTTP/1.1 are)")
    return method, target, version


def header_fields(fp: BinaryIO, limits: Limits) -> list[tuple[str, str]]:
    """The header block's fields, read from ``fp`` up to its empty line, in order."""
    fields: list[tuple[str, str]] = []
    while True:
        line = fp.readline(limits.header_field_bytes + 3)  # CRLF and one byte past the limit
        if line == b"\r\n":
            return fields
        if not line:
            raise Refused(400, "the header block ended before its empty line")
        if len(line) > limits.header_field_bytes + 2:
            raise Refused(431, f"a header line is longer than {limits.header_field_bytes} bytes")
        if len(fields) == limits.header_fields:
            raise Refused(431, f"more than {limits.header_fields} header fields")
        if line[:1] in (b" ", b"\t"):
            raise Refused(400, "a folded header line (obsolete line folding) is not accepted")
        match = FIELD.match(line)
        if match is None or not FIELD_VALUE.match(match.group(2)):
            raise Refused(400, f"not a header field: {line[:40].decode('latin-1')!r}")
        fields.append((match.group(1).decode("ascii"), match.group(2).decode("latin-1")))


def body_framing(fields: list[tuple[str, str]]) -> None:
    """One way to tell where the body ends, or none: refuses the ambiguous ones."""
    lengths = [value for name, value in fields if name.lower() == "content-length"]
    codings = [value for name, value in fields if name.lower() == "transfer-encoding"]
    if lengths and codings:
        raise Refused(400, "Content-Length and Transfer-Encoding together")
    if len(lengths) > 1:
        raise Refused(400, "more than one Content-Length")
    if lengths and not (lengths[0].isascii() and lengths[0].isdigit() and len(lengths[0]) <= 18):
        raise Refused(400, "Content-Length must be a whole number of bytes")
    if len(codings) > 1 or (codings and codings[0].lower() != "chunked"):
        raise Refused(501, "only Transfer-Encoding: chunked is served")
