"""How the pages show values: amounts exactly as the API gives them, with their currency;
DR (negative, the customer owes) in red and CR (positive) in green; times in UTC."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from flask import Flask, request

from ledger_core.money import format_amount


def money(amount: Decimal | None, currency: str = "") -> str:
    if amount is None:
        return ""
    return f"{format_amount(amount)} {currency}".strip()


def side(amount: Decimal | None) -> str:
    """The CSS class of a signed figure: dr below zero, cr above, none at zero."""
    if amount is None or amount == 0:
        return "zero"
    return "dr" if amount < 0 else "cr"


def when(moment: datetime | date | None) -> str:
    if moment is None:
        return "—"
    if isinstance(moment, datetime):
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return moment.isoformat()


def with_query(**changes: Any) -> str:
    """This page's URL with some query parameters changed (None drops one): filters live in
    the URL, so a filtered page can be bookmarked and shared."""
    args = {k: v for k, v in request.args.items() if k not in changes}
    args.update({k: v for k, v in changes.items() if v is not None})
    path = request.script_root + request.path  # the console is mounted below the API
    return f"{path}?{urlencode(args)}" if args else path


def register_filters(app: Flask) -> None:
    app.jinja_env.filters.update(money=money, side=side, when=when)
    app.jinja_env.globals.update(with_query=with_query)
