"""API key commands: issue, revoke, look up and list keys (ledger_core/access.py).

The base of the ``Ledger`` application: keys are aggregates in the same log as the
accounts, so issuing and revoking are audited with the caller that did it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from commands.bookings import Clock
from ledger_core.access import (
    BOOTSTRAP_KEY_ID,
    SECRET_PREFIX,
    ApiKey,
    Caller,
    Role,
    key_id_of_secret,
    key_uuid,
    parse_key_id,
)
from ledger_core.errors import ApiKeyNotFound, InvariantViolation, Unauthenticated

MAX_LISTED_KEYS = 10_000
_ISSUED_TOPIC = get_topic(ApiKey.Issued)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str  # shown once, to whoever asked for the key; never stored


def new_secret(key_id: str) -> str:
    return f"{SECRET_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


class KeyCommands(Application[UUID]):
    clock: Clock

    def issue_key(self, *, role: str, name: str = "", accounts: list[str] | None = None,
                  key_id: str | None = None) -> IssuedKey:
        key_id = key_id or f"k{secrets.token_hex(8)}"
        secret = new_secret(key_id)
        key = ApiKey.issue(key_id=key_id, name=name, role=role, accounts=accounts, secret=secret,
                           issued_at=self.clock())
        self.save(key)
        return IssuedKey(key, secret)

    def issue_bootstrap_key(self) -> IssuedKey | None:
        """The first admin key of an empty ledger; None once any key exists. Servers started
        at once all try the same key id: one wins, the others collide and print nothing."""
        if self.recorder.select_notifications(start=1, limit=1, topics=[_ISSUED_TOPIC]):
            return None
        try:
            return self.issue_key(role=Role.ADMIN.value, name="bootstrap admin", key_id=BOOTSTRAP_KEY_ID)
        except IntegrityError:
            return None

    def revoke_key(self, key_id: str) -> ApiKey:
        key = self.api_key(key_id)
        key.revoke(self.clock())
        self.save(key)
        return key

    def api_key(self, key_id: str) -> ApiKey:
        try:
            key = self.repository.get(key_uuid(parse_key_id(key_id)))
        except AggregateNotFoundError:
            raise ApiKeyNotFound(f"no API key {key_id}", key_id=key_id) from None
        if not isinstance(key, ApiKey):
            raise InvariantViolation(f"the id of key {key_id} belongs to a {type(key).__name__}")
        return key

    def authenticate(self, secret: str) -> Caller:
        key_id = key_id_of_secret(secret)
        try:
            key = self.api_key(key_id)
        except ApiKeyNotFound:
            raise Unauthenticated("the API key is not valid") from None
        return key.verify(secret)

    def api_keys(self) -> list[ApiKey]:
        """Every key ever issued, oldest first (revoked ones too: an auditor wants them)."""
        ids, position = [], 0
        while len(ids) < MAX_LISTED_KEYS:
            found = self.recorder.select_notifications(start=position + 1, limit=500, topics=[_ISSUED_TOPIC])
            if not found:
                break
            ids.extend(self.mapper.to_domain_event(n).originator_id for n in found)
            position = found[-1].id
        return [key for key in (self.repository.get(i) for i in ids) if isinstance(key, ApiKey)]
