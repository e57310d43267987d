"""Who may do what: roles, the verified caller, and API keys as an aggregate.

A key is an event-sourced aggregate (issued, revoked) saved in the ledger's own log, so its
life is in the audit trail with the verified identity of whoever issued or revoked it.
Only a SHA-256 digest of the secret is stored: the secrets are 256 random bits, so a slow
password hash would add nothing but latency to every request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from ledger_core.account import ACCOUNT_ID_PATTERN, LEDGER_NAMESPACE
from ledger_core.errors import AccountNotFound, ApiKeyRevoked, InvalidInput, Unauthenticated

MAX_KEY_ACCOUNTS = 1_000
MAX_KEY_NAME_LENGTH = 200
SECRET_PREFIX = "ldk"
# ldk_<key id>_<43 url-safe base64 characters: 32 random bytes>
SECRET_PATTERN = re.compile(r"ldk_(k[0-9a-f]{16})_([A-Za-z0-9_-]{43})", re.ASCII)
KEY_ID_PATTERN = re.compile(r"k[0-9a-f]{16}", re.ASCII)
BOOTSTRAP_KEY_ID = "k0000000000000000"  # the first admin key `ledger serve` makes on an empty ledger


class Role(StrEnum):
    SERVICE = "service"  # posts usage, charges and reservations; reads the figures it needs
    FINANCE = "finance"  # reads everything; invoices, payments, refunds, recharges, reminders, exports
    AUDITOR = "auditor"  # reads history, as-of figures and balance details; writes nothing
    ADMIN = "admin"  # accounts, settings and keys, and everything else


@dataclass(frozen=True)
class Caller:
    """A verified key: what the audit trail records and what scopes every read."""

    key_id: str
    role: Role
    accounts: frozenset[str] | None  # None: every account

    def sees(self, account_id: str | None) -> bool:
        return self.accounts is None or account_id in self.accounts

    @property
    def scoped(self) -> bool:
        return self.accounts is not None

    def account_to_list(self, wanted: str | None) -> str | None:
        """The account a list or export across accounts shows: ``wanted`` if this caller sees
        it (else AccountNotFound: another account looks like a missing one); the caller's own
        when it sees exactly one; None (every account) for an unscoped caller. A caller
        scoped to several accounts must name one (InvalidInput)."""
        if wanted is not None:
            if not self.sees(wanted):
                raise AccountNotFound(f"no account {wanted!r}", account_id=wanted)
            return wanted
        if self.accounts is None:
            return None
        if len(self.accounts) == 1:
            return next(iter(self.accounts))
        raise InvalidInput("this key sees several accounts: name one with account_id", field="account_id")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def key_uuid(key_id: str) -> UUID:
    return uuid5(LEDGER_NAMESPACE, f"api-key/{key_id}")


def parse_key_id(key_id: object) -> str:
    if not isinstance(key_id, str) or not KEY_ID_PATTERN.fullmatch(key_id):
        raise InvalidInput("not a key id (k and 16 hex digits)", field="key_id")
    return key_id


def key_id_of_secret(secret: str) -> str:
    match = SECRET_PATTERN.fullmatch(secret)
    if match is None:
        raise Unauthenticated("the bearer token is not a ledger API key")
    return match.group(1)


def parse_scope(accounts: object) -> tuple[str, ...] | None:
    if accounts is None:
        return None
    if not isinstance(accounts, (list, tuple)) or not 1 <= len(accounts) <= MAX_KEY_ACCOUNTS:
        raise InvalidInput(f"accounts must list 1..{MAX_KEY_ACCOUNTS} account ids, or be left out", field="accounts")
    for account in accounts:
        if not isinstance(account, str) or not re.fullmatch(ACCOUNT_ID_PATTERN, account):
            raise InvalidInput(f"not an account id: {account!r}", field="accounts")
    return tuple(sorted(set(accounts)))


class ApiKey(Aggregate):
    @staticmethod
    def create_id(key_id: str) -> UUID:
        return key_uuid(key_id)

    @classmethod
    def issue(cls, *, key_id: str, name: str, role: str, accounts: object, secret: str,
              issued_at: datetime) -> ApiKey:
        parse_key_id(key_id)
        if key_id_of_secret(secret) != key_id:
            raise InvalidInput("the secret does not name its key id", field="secret")
        if not isinstance(name, str) or len(name) > MAX_KEY_NAME_LENGTH:
            raise InvalidInput(f"name: at most {MAX_KEY_NAME_LENGTH} characters", field="name")
        try:
            Role(role)
        except ValueError:
            raise InvalidInput(f"role must be one of {', '.join(r.value for r in Role)}", field="role") from None
        return cls(key_id=key_id, name=name, role=role, accounts=parse_scope(accounts),
                   secret_sha256=digest(secret), issued_at=issued_at)

    @event("Issued")
    def __init__(self, key_id: str, name: str, role: str, accounts: tuple[str, ...] | None, secret_sha256: str,
                issued_at: datetime) -> None:
        self.key_id = key_id
        self.name = name
        self.role = role
        self.accounts = None if accounts is None else tuple(accounts)
        self.secret_sha256 = secret_sha256
        self.issued_at = issued_at
        self.revoked_at: datetime | None = None

    def revoke(self, now: datetime) -> None:
        if self.revoked_at is not None:
            raise ApiKeyRevoked(f"key {self.key_id} was revoked already", key_id=self.key_id)
        self._revoked(revoked_at=now)

    @event("Revoked")
    def _revoked(self, revoked_at: datetime) -> None:
        self.revoked_at = revoked_at

    def verify(self, secret: str) -> Caller:
        """The caller this secret proves, or Unauthenticated (never saying which check failed)."""
        if not hmac.compare_digest(digest(secret), self.secret_sha256) or self.revoked_at is not None:
            raise Unauthenticated("the API key is not valid")
        return Caller(self.key_id, Role(self.role), None if self.accounts is None else frozenset(self.accounts))
