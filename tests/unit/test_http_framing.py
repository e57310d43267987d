"""entrypoints/http_framing.py: what the server refuses before the application sees a request."""

from __future__ import annotations

import io
from typing import Any

import pytest

from entrypoints.http_framing import Limits, Refused, body_framing, header_fields, request_line

LIMITS = Limits(request_line_bytes=40, header_fields=3, header_field_bytes=20)


def refused(call: Any, *args: Any) -> tuple[int, str]:
    with pytest.raises(Refused) as error:
        call(*args)
    return error.value.status, error.value.message


def test_a_request_line_is_method_target_and_version_ended_by_crlf():
    assert request_line("GET /v1/keys?x=1 HTTP/1.1\r\n", LIMITS) == ("GET", "/v1/keys?x=1", "HTTP/1.1")
    assert request_line("DELETE /a HTTP/1.0\r\n", LIMITS) == ("DELETE", "/a", "HTTP/1.0")
    assert refused(request_line, "GET /" + "a" * 40 + " HTTP/1.1\r\n", LIMITS)[0] == 414
    assert refused(request_line, "GET /" + "a" * 40, LIMITS)[0] == 414  # cut by the reader: too long all the same
    for line, says in [("GET /a HTTP/1.1\n", "CRLF"), ("GET /a\r\n", "METHOD target"),
                       ("GET  /a HTTP/1.1\r\n", "METHOD target"), ("get /a HTTP/1.1\r\n", "method"),
                       ("G(T /a HTTP/1.1\r\n", "method"), ("GET /\x00 HTTP/1.1\r\n", "printable ASCII"),
                       ("GET /\xe9 HTTP/1.1\r\n", "printable ASCII"), ("GET /a HTTP/2.0\r\n", "HTTP version")]:
        status, message = refused(request_line, line, LIMITS)
        assert status == 400 and says in message, line


def fields(raw: bytes, limits: Limits = LIMITS) -> list[tuple[str, str]]:
    return header_fields(io.BytesIO(raw), limits)


def test_header_fields_are_tokens_with_visible_values_in_crlf_lines_up_to_the_limits():
    assert fields(b"Host: x\r\nX-A:  b c \t\r\nx-a: \xe9\r\n\r\nBODY") == [("Host", "x"), ("X-A", "b c"), ("x-a", "\xe9")]
    assert fields(b"\r\n") == []
    assert refused(fields, b"X-Big: " + b"a" * 14 + b"\r\n\r\n") == (431, "a header line is longer than 20 bytes")
    assert fields(b"X-Big: " + b"a" * 13 + b"\r\n\r\n") == [("X-Big", "a" * 13)]  # 20 bytes exactly
    assert refused(fields, b"A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n") == (431, "more than 3 header fields")
    for raw, says in [(b"A: 1\r\n folded\r\n\r\n", "folded"), (b"X A: 1\r\n\r\n", "not a header field"),
                      (b"nocolon\r\n\r\n", "not a header field"), (b"A: 1\n\r\n", "not a header field"),
                      (b"A: a\x01b\r\n\r\n", "not a header field"), (b"A: a\rb\r\n\r\n", "not a header field"),
                      (b"A: a\x7f\r\n\r\n", "not a header field"), (b"A: 1\r\n", "ended before")]:
        status, message = refused(fields, raw)
        assert status == 400 and says in message, raw


def test_a_body_is_framed_one_way_or_not_at_all():
    body_framing([("Content-Length", "12")])
    body_framing([("Transfer-Encoding", "Chunked")])
    body_framing([("Host", "x")])
    for framing, status in [([("Content-Length", "1"), ("Transfer-Encoding", "chunked")], 400),
                            ([("Content-Length", "1"), ("content-length", "1")], 400),
                            ([("Content-Length", "+1")], 400), ([("Content-Length", "1 ")], 400),
                            ([("Content-Length", "")], 400), ([("Content-Length", "\u0661")], 400),
                            ([("Content-Length", "9" * 19)], 400),
                            ([("Transfer-Encoding", "gzip")], 501), ([("Transfer-Encoding", "gzip, chunked")], 501),
                            ([("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")], 501)]:
        assert refused(body_framing, framing)[0] == status, framing
