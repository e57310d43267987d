"""Who may call what: every endpoint declares its roles, and nothing undeclared is served.

``@allow(Role.FINANCE, ...)`` on a handler names the roles that may call it (admin may
call everything); ``@public`` marks the few that need no key (probes, the spec). A
handler with neither is refused to every caller, so a forgotten declaration fails
closed, and a test walks the spec to prove that every operation has one.

A key scoped to accounts sees only those: a path's ``account_id`` outside the scope is
answered as if the account did not exist (404), lists are narrowed to the scope, and
endpoints that span every account (``all_accounts=True``) need an unscoped key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from flask import Flask, current_app, g, request
from flask_smorest import Api

from ledger_core.access import Caller, Role
from ledger_core.errors import AccountNotFound, Forbidden, Unauthenticated

F = TypeVar("F", bound=Callable[..., Any])
SECURITY_SCHEME = "bearerAuth"
# Served by flask-smorest itself, so not decorated here.
PUBLIC_ENDPOINTS = {"api-docs.openapi_json"}


@dataclass(frozen=True)
class Access:
    roles: frozenset[Role]  # empty: public
    all_accounts: bool = False

    @property
    def public(self) -> bool:
        return not self.roles


PUBLIC = Access(frozenset())


def allow(*roles: Role, all_accounts: bool = False) -> Callable[[F], F]:
    def mark(func: F) -> F:
        func._ledger_access = Access(frozenset({*roles, Role.ADMIN}), all_accounts)  # type: ignore[attr-defined]
        return func

    return mark


def public(func: F) -> F:
    func._ledger_access = PUBLIC  # type: ignore[attr-defined]
    return func


def access_of(app: Flask, endpoint: str, method: str) -> Access | None:
    """The declaration of the handler serving ``method`` at ``endpoint``; None if it has none."""
    if endpoint in PUBLIC_ENDPOINTS:
        return PUBLIC
    view = app.view_functions.get(endpoint)
    view_class = getattr(view, "view_class", None)
    handler = getattr(view_class, method.lower(), None) if view_class else view
    if handler is None and method == "HEAD" and view_class is not None:
        handler = getattr(view_class, "get", None)
    return getattr(handler, "_ledger_access", None)


def caller() -> Caller:
    """The verified caller of this request (every non-public handler has one)."""
    found: Caller | None = g.get("caller")
    if found is None:
        raise Unauthenticated("this endpoint needs an API key")
    return found


def visible_account(account_id: str | None) -> str | None:
    """The account a list or export may show (ledger_core/access.py Caller.account_to_list)."""
    return caller().account_to_list(account_id)


class Owned(Protocol):
    account_id: str


O = TypeVar("O", bound=Owned)


def visible(row: O | None, not_found: Exception) -> O:
    """The row, when it exists and the caller may see its account; else ``not_found`` (the
    object's own 404: another account's object looks exactly like a missing one)."""
    if row is None or not caller().sees(row.account_id):
        raise not_found
    return row


def _bearer_secret() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthenticated("send an API key: Authorization: Bearer <secret>")
    return secret.strip()


def authorize(authenticate: Callable[[str], Caller], rate_limit: Callable[[str], None]) -> None:
    """Decides whether this request may run; sets ``g.caller``. For before_request."""
    if request.endpoint is None or request.routing_exception is not None or request.method == "OPTIONS":
        return  # 404, 405 and OPTIONS answer from routing alone
    access = access_of(current_app, request.endpoint, request.method)
    if access is None:
        raise Forbidden("this endpoint declares no roles, so no one may call it")
    if access.public:
        return
    who = authenticate(_bearer_secret())
    g.caller = who
    rate_limit(who.key_id)
    if who.role not in access.roles:
        raise Forbidden(f"role {who.role.value} may not do this; it needs one of "
                        f"{', '.join(sorted(r.value for r in access.roles))}", role=who.role.value)
    if access.all_accounts and who.scoped:
        raise Forbidden("this endpoint spans every account: it needs a key that is not scoped to accounts")
    account_id = (request.view_args or {}).get("account_id")
    if account_id is not None and not who.sees(account_id):
        raise AccountNotFound(f"no account {account_id!r}", account_id=account_id)


def document_access(api: Api, app: Flask) -> None:
    """Writes each operation's declaration into the OpenAPI document: its security
    requirement, its roles (x-roles) and its 401, 403 and 429 answers."""
    api.spec.components.security_scheme(SECURITY_SCHEME, {
        "type": "http", "scheme": "bearer",
        "description": "An API key from `ledger keys create` or POST /v1/keys: Authorization: Bearer ldk_..."})
    paths = api.spec._paths  # flask-smorest fills it as blueprints register
    refused = {"401": api.spec.components.get_ref("response", "UNAUTHORIZED"),
               "403": api.spec.components.get_ref("response", "FORBIDDEN"),
               "429": api.spec.components.get_ref("response", "TOO_MANY_REQUESTS")}
    for rule in app.url_map.iter_rules():
        path = _openapi_path(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operation = paths.get(path, {}).get(method.lower())
            access = access_of(app, rule.endpoint, method)
            if operation is None or access is None:
                continue
            if access.public:
                operation["security"] = []
                continue
            operation["security"] = [{SECURITY_SCHEME: []}]
            operation["x-roles"] = sorted(r.value for r in access.roles)
            if access.all_accounts:
                operation["x-all-accounts"] = True  # a key scoped to accounts gets 403
            responses = operation.setdefault("responses", {})
            for status, ref in refused.items():
                responses.setdefault(status, ref)


def _openapi_path(rule: str) -> str:
    out, depth = [], 0
    for part in rule.replace(">", "<").split("<"):
        if depth % 2:
            out.append("{" + part.split(":")[-1] + "}")
        else:
            out.append(part)
        depth += 1
    return "".join(out)
