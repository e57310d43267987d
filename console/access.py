"""Who may open which page: every page declares its roles, and nothing undeclared is served.

A person logs in with an API key (`ledger keys create`); the session cookie keeps only the
key's id, and every request checks the key again, so a revoked key logs its sessions out.
The caller is the key's: its role decides which pages and actions it gets, its account
scope which accounts it sees (a key scoped to one account is a customer's login). A page of
an account outside the scope answers 404, as a missing account does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlparse

from flask import Flask, abort, current_app, g, redirect, request, session, url_for
from werkzeug.wrappers import Response

from commands.api_keys import load_key
from ledger_core.access import Caller, Role
from ledger_core.errors import ApiKeyNotFound, InvalidInput
from service.ledger_service import LedgerService

F = TypeVar("F", bound=Callable[..., Any])
# Served by Flask itself: the stylesheet and scripts of every page, the login page.
PUBLIC_ENDPOINTS = {"static"}


@dataclass(frozen=True)
class PageAccess:
    roles: frozenset[Role]  # empty: public

    @property
    def public(self) -> bool:
        return not self.roles


def page(*roles: Role) -> Callable[[F], F]:
    """The roles that may open the page (admin may open everything)."""

    def mark(func: F) -> F:
        func._console_access = PageAccess(frozenset({*roles, Role.ADMIN}))  # type: ignore[attr-defined]
        return func

    return mark


def public_page(func: F) -> F:
    func._console_access = PageAccess(frozenset())  # type: ignore[attr-defined]
    return func


def access_of(app: Flask, endpoint: str) -> PageAccess | None:
    if endpoint in PUBLIC_ENDPOINTS:
        return PageAccess(frozenset())
    return getattr(app.view_functions.get(endpoint), "_console_access", None)


def service() -> LedgerService:
    return current_app.extensions["ledger"]


def caller() -> Caller:
    found: Caller | None = g.get("caller")
    if found is None:
        abort(401)
    return found


def may(*roles: Role) -> bool:
    """Whether the caller may take actions of these roles (for showing buttons at all)."""
    who = g.get("caller")
    return who is not None and (who.role in roles or who.role is Role.ADMIN)


def log_in(secret: str) -> Caller:
    who = service().commands.authenticate(secret.strip())
    session.clear()
    session["key_id"] = who.key_id
    session.permanent = True
    return who


def log_out() -> None:
    session.clear()


def session_caller() -> Caller | None:
    """The caller of the session's key, if the key still exists and is not revoked."""
    key_id = session.get("key_id")
    if not isinstance(key_id, str):
        return None
    try:
        key = load_key(service().commands, key_id, to_change=False)
    except (ApiKeyNotFound, InvalidInput):
        return None
    if key.revoked_at is not None:
        return None
    return Caller(key.key_id, Role(key.role), None if key.accounts is None else frozenset(key.accounts))


def authorize() -> Response | None:
    """For before_request: sets ``g.caller``; a page without a declaration is refused to
    everyone; a visitor without a session is sent to the login page."""
    if request.endpoint is None or request.routing_exception is not None:
        return None
    access = access_of(current_app, request.endpoint)
    if access is None:
        abort(403)
    who = session_caller()
    g.caller = who
    if access.public:
        return None
    if who is None:
        if session.get("key_id"):
            log_out()  # revoked or gone: the session ends
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if who.role not in access.roles:
        abort(403)
    account_id = (request.view_args or {}).get("account_id")
    if account_id is not None and not who.sees(account_id):
        abort(404)
    return None


def listed_account(wanted: str | None) -> str | None:
    """The account a list across accounts shows (ledger_core/access.py Caller.account_to_list):
    another account's is a 404, a login scoped to several must choose (400)."""
    return caller().account_to_list(wanted)


O = TypeVar("O")


def visible(row: O | None) -> O:
    """The row (a bill, an invoice, a transaction, an order), if the login sees its account;
    else 404, as if it did not exist."""
    if row is None or not caller().sees(row.account_id):  # type: ignore[attr-defined]
        abort(404)
    return row


def visible_account_ids() -> tuple[str, ...] | None:
    who = caller()
    return None if who.accounts is None else tuple(sorted(who.accounts))


def back_to(target: str) -> str:
    """A page of this console to return to after a form (``target`` relative to the console,
    as request.full_path gives it), or "" if it is anything else (never another site)."""
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return ""
    return request.script_root + target
