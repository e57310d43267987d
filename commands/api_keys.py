"""API keys (ledger_core/access.py): the handlers of IssueKey, IssueBootstrapKey and
RevokeKey, and the reads the Ledger application offers (look up, authenticate, list).

Keys are aggregates in the same log as the accounts, so issuing and revoking are
audited with the caller that did it."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from commands.unit_of_work import UnitOfWork, created, load
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
from ledger_core.commands import IssueBootstrapKey, IssueKey, RevokeKey
from ledger_core.errors import ApiKeyNotFound, Unauthenticated

MAX_LISTED_KEYS = 10_000
MAX_CACHED_KEYS = 10_000
_ISSUED_TOPIC = get_topic(ApiKey.Issued)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str  # shown once, to whoever asked for the key; never stored


def new_secret(key_id: str) -> str:
    return f"{SECRET_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def issue_key(command: IssueKey, unit: UnitOfWork) -> IssuedKey:
    key_id = command.key_id or f"k{secrets.token_hex(8)}"
    secret = new_secret(key_id)
    accounts = None if command.accounts is None else list(command.accounts)
    key = ApiKey.issue(key_id=key_id, name=command.name, role=command.role, accounts=accounts, secret=secret,
                       issued_at=unit.clock())
    unit.save_alone(key)
    return IssuedKey(key, secret)


def issue_bootstrap_key(command: IssueBootstrapKey, unit: UnitOfWork) -> IssuedKey | None:
    """Servers started at once all try the same key id: one wins, the others collide and
    print nothing."""
    if unit.app.recorder.select_notifications(start=1, limit=1, topics=[_ISSUED_TOPIC]):
        return None
    try:
        return issue_key(IssueKey(Role.ADMIN.value, name="bootstrap admin", key_id=BOOTSTRAP_KEY_ID), unit)
    except IntegrityError:
        return None


def revoke_key(command: RevokeKey, unit: UnitOfWork) -> ApiKey:
    key = load_key(unit.app, command.key_id)
    key.revoke(unit.clock())
    unit.save_alone(key)
    if isinstance(unit.app, KeyQueries):
        unit.app.key_cache.forget(key.key_id)  # after the commit: this process refuses the key at once
    return key


def load_key(app: Application[UUID], key_id: str, *, to_change: bool = True) -> ApiKey:
    def not_found() -> ApiKeyNotFound:
        return ApiKeyNotFound(f"no API key {key_id}", key_id=key_id)

    return load(app, key_uuid(parse_key_id(key_id)), ApiKey, not_found, to_change=to_change)


class KeyCache:
    """Keys read to authenticate requests, each kept for ``ttl_s`` after it was read.

    Reading the key was one of a balance read's two database round trips. What a cached
    key may miss is a revocation by another process: the process that revokes forgets the
    key at once, the others refuse it once their copy is ``ttl_s`` old. The secret is
    checked against the key on every request, cached or not. ``ttl_s`` 0 keeps nothing."""

    def __init__(self, ttl_s: float, max_keys: int = MAX_CACHED_KEYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 <= ttl_s <= 60 or max_keys < 1:
            raise ValueError("a key cache keeps keys 0..60 s, and at least one")
        self.ttl_s, self.max_keys, self.clock = ttl_s, max_keys, clock
        self._keys: dict[str, tuple[ApiKey, float]] = {}  # key id: (key, read at), oldest first
        self._lock = threading.Lock()

    def get(self, key_id: str) -> ApiKey | None:
        with self._lock:
            kept = self._keys.get(key_id)
            if kept is None:
                return None
            if self.clock() - kept[1] >= self.ttl_s:
                del self._keys[key_id]
                return None
            return kept[0]

    def put(self, key: ApiKey, read_at_s: float) -> None:
        if not self.ttl_s:
            return
        with self._lock:
            self._keys.pop(key.key_id, None)
            self._keys[key.key_id] = (key, read_at_s)
            while len(self._keys) > self.max_keys:
                del self._keys[next(iter(self._keys))]

    def forget(self, key_id: str) -> None:
        with self._lock:
            self._keys.pop(key_id, None)


class KeyQueries(Application[UUID]):
    """Reads of keys, on the Ledger application: look one up, authenticate a secret, list them."""

    key_cache = KeyCache(0)  # none unless the service sets one (Settings.key_cache_ms)

    def api_key(self, key_id: str) -> ApiKey:
        return load_key(self, key_id)

    def authenticate(self, secret: str) -> Caller:
        key_id = key_id_of_secret(secret)
        key = self.key_cache.get(key_id)
        if key is None:
            read_at_s = self.key_cache.clock()  # before the read: a copy is never older than it says
            try:
                key = load_key(self, key_id, to_change=False)  # no copy of the key: only read
            except ApiKeyNotFound:
                raise Unauthenticated("the API key is not valid") from None
            self.key_cache.put(key, read_at_s)
        return key.verify(secret)

    def api_keys(self) -> list[ApiKey]:
        """Every key ever issued, oldest first (revoked ones too: an auditor wants them)."""
        return [key for key in created(self, ApiKey.Issued, MAX_LISTED_KEYS)  # type: ignore[attr-defined]
                if isinstance(key, ApiKey)]
