"""Authentication reads a key once per LEDGER_KEY_CACHE_MS, not once per request. The process
that revokes a key refuses it at once; another process refuses it once its copy is that old.
The secret is checked on every request, cached key or not."""

from __future__ import annotations

import pytest

from commands.api_keys import KeyCache
from ledger_core.access import Role
from ledger_core.commands import IssueKey, RevokeKey
from ledger_core.errors import Unauthenticated
from service.ledger_service import LedgerService
from service.settings import Settings


class Ticks:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_a_key_revoked_by_another_process_is_refused_once_the_copy_is_old(database):
    ticks = Ticks()
    here, there = LedgerService(Settings(database=database)), LedgerService(Settings(database=database))
    try:
        here.commands.key_cache = KeyCache(1.0, clock=ticks)
        secret = here.handle(IssueKey("finance", name="books")).secret
        caller = here.commands.authenticate(secret)
        assert caller.role is Role.FINANCE
        reads = here.commands.repository.get
        here.commands.repository.get = None  # type: ignore[method-assign]  # a read now would fail
        assert here.commands.authenticate(secret).key_id == caller.key_id  # from the copy
        here.commands.repository.get = reads  # type: ignore[method-assign]

        there.handle(RevokeKey(caller.key_id))
        with pytest.raises(Unauthenticated):
            there.commands.authenticate(secret)  # the revoking process: at once
        ticks.now_s += 0.5
        assert here.commands.authenticate(secret).key_id == caller.key_id  # the copy is 0.5 s old
        ticks.now_s += 0.5
        with pytest.raises(Unauthenticated):
            here.commands.authenticate(secret)  # 1 s old: read again, and refused
    finally:
        here.close()
        there.close()


def test_the_revoking_process_refuses_at_once_and_a_cached_key_still_checks_the_secret(service):
    issued = service.handle(IssueKey("auditor", name="audit"))
    assert service.commands.key_cache.ttl_s == 1.0  # the default, LEDGER_KEY_CACHE_MS=1000
    service.commands.authenticate(issued.secret)
    assert service.commands.key_cache.get(issued.key.key_id) is not None
    with pytest.raises(Unauthenticated):
        service.commands.authenticate(issued.secret[:-1] + ("A" if issued.secret[-1] != "A" else "B"))
    service.handle(RevokeKey(issued.key.key_id))
    assert service.commands.key_cache.get(issued.key.key_id) is None
    with pytest.raises(Unauthenticated):
        service.commands.authenticate(issued.secret)


def test_the_cache_is_bounded_and_zero_keeps_nothing(service):
    keys = [service.handle(IssueKey("auditor", name=f"k{n}")).key for n in range(3)]
    ticks = Ticks()
    cache = KeyCache(5.0, max_keys=2, clock=ticks)
    for key in keys:
        cache.put(key, ticks())
    assert cache.get(keys[0].key_id) is None  # the oldest went first
    assert [cache.get(k.key_id) for k in keys[1:]] == keys[1:]
    off = KeyCache(0)
    off.put(keys[0], 0.0)
    assert off.get(keys[0].key_id) is None
    with pytest.raises(ValueError):
        KeyCache(61)
