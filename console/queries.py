"""Reading a page's filters from its URL: each field checked, and a bad one reported beside
its input (the page answers 400 and shows what it could), never a server error."""

from __future__ import annotations

from typing import Any

from flask import abort, request
from marshmallow import Schema, ValidationError, fields, validate

from ledger_core.text import unsafe_character

MAX_TEXT = 128
PAGE_ROWS = 25


def text(max_length: int = MAX_TEXT) -> fields.String:
    return fields.String(validate=[validate.Length(min=1, max=max_length), _safe_text])


def choice(options: tuple[str, ...]) -> fields.String:
    return fields.String(validate=validate.OneOf(options, error="choose one of: {choices}"))


def cursor() -> fields.Integer:
    return fields.Integer(validate=validate.Range(1, 10**18), metadata={"description": "a log position"})


def _safe_text(value: str) -> None:
    problem = unsafe_character(value)
    if problem:
        raise ValidationError(f"holds {problem}")


def read(schema: Schema) -> tuple[dict[str, Any], dict[str, str]]:
    """The URL's valid filters, and a message per invalid one (an empty field means no filter)."""
    given = {k: v for k, v in request.args.items() if v.strip() and k in schema.fields}
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, raw in given.items():
        try:
            values[name] = schema.fields[name].deserialize(raw.strip())
        except ValidationError as error:
            messages = error.messages if isinstance(error.messages, list) else [str(error.messages)]
            errors[name] = "; ".join(str(m) for m in messages)
    return values, errors


def read_export(schema: Schema) -> dict[str, Any]:
    """An export's filters: the list's, without its cursor (an export holds every row the
    filters pick); a bad one is a 400 naming it."""
    values, errors = read(schema)
    if errors:
        abort(400, "; ".join(f"{name}: {message}" for name, message in errors.items()))
    values.pop("before", None)
    return values
