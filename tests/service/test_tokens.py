"""Tokens: hash-only storage, directory binding, revocation and expiry."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from syncd.service import tokens
from syncd.service.errors import InvalidValue, NotFound
from syncd.store import session_scope
from syncd.store.models import ScimToken, utcnow


def test_token_roundtrip_and_only_hash_stored(engine) -> None:
    with session_scope(engine) as s:
        _row, secret = tokens.create_token(s, directory="entra", name="prod")
    with session_scope(engine, write=False) as s:
        stored = s.execute(select(ScimToken)).scalars().one()
    assert secret not in (stored.token_hash, stored.prefix, stored.id)
    assert stored.token_hash == tokens.hash_token(secret)
    with session_scope(engine) as s:
        got = tokens.authenticate(s, secret)
        assert got is not None and got.directory == "entra"
        assert tokens.authenticate(s, secret + "x") is None
        assert tokens.authenticate(s, "") is None
        assert tokens.authenticate(s, secret, kind="admin") is None


def test_revoked_and_expired_tokens_fail(engine) -> None:
    with session_scope(engine) as s:
        row, secret = tokens.create_token(s, directory="entra")
        row2, secret2 = tokens.create_token(s, directory="entra", expires_in=timedelta(days=1))
    with session_scope(engine) as s:
        tokens.revoke_token(s, token=row.id)
        tokens.revoke_token(s, token=row.id)  # idempotent
        s.execute(
            update(ScimToken)
            .where(ScimToken.id == row2.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    with session_scope(engine) as s:
        assert tokens.authenticate(s, secret) is None
        assert tokens.authenticate(s, secret2) is None
        with pytest.raises(NotFound):
            tokens.revoke_token(s, token="nope")


def test_scim_token_needs_directory_and_admin_has_none(engine) -> None:
    with pytest.raises(InvalidValue), session_scope(engine) as s:
        tokens.create_token(s, directory=None)
    with session_scope(engine) as s:
        _row, secret = tokens.create_token(s, directory=None, kind="admin")
    with session_scope(engine) as s:
        assert tokens.authenticate(s, secret, kind="admin") is not None
        assert tokens.authenticate(s, secret) is None


# -- the token cache (the SCIM endpoint's) ----------------------------------------------------


def _live(engine, **kw) -> tuple[ScimToken, str]:
    with session_scope(engine) as s:
        row, secret = tokens.create_token(s, directory="entra", **kw)
    return row, secret


def test_cache_answers_within_its_ttl_and_misses_after(engine) -> None:
    row, secret = _live(engine)
    cache = tokens.TokenCache(ttl_s=3600)
    assert cache.get("store", secret) is None
    cache.put("store", row, seen=time.monotonic())
    hit = cache.get("store", secret)
    assert hit is not None and (hit.id, hit.directory) == (row.id, "entra")
    assert cache.get("other store", secret) is None  # keyed by store too
    assert cache.get("store", secret, kind="admin") is None
    stale = tokens.TokenCache(ttl_s=3600)
    stale.put("store", row, seen=time.monotonic() - 3601)
    assert stale.get("store", secret) is None


def test_cache_never_outlives_the_tokens_expiry(engine) -> None:
    row, secret = _live(engine, expires_in=timedelta(days=1))
    row.expires_at = utcnow() - timedelta(seconds=1)
    cache = tokens.TokenCache(ttl_s=3600)
    cache.put("store", row, seen=time.monotonic())
    assert cache.get("store", secret) is None


def test_revocation_drops_the_cached_token_and_a_read_racing_it_is_not_kept(engine) -> None:
    row, secret = _live(engine)
    before_revoke = time.monotonic()
    tokens.CACHE.put("store", row, seen=before_revoke)
    assert tokens.CACHE.get("store", secret) is not None
    with session_scope(engine) as s:
        tokens.revoke_token(s, token=row.id)
    assert tokens.CACHE.get("store", secret) is None
    # a request that read the row before the revocation committed, and caches it after
    tokens.CACHE.put("store", row, seen=before_revoke)
    assert tokens.CACHE.get("store", secret) is None
    tokens.CACHE.put("store", row, seen=time.monotonic())  # a later read (of a revoked row
    assert tokens.CACHE.get("store", secret) is not None  # never happens; the cache trusts it)
    tokens.CACHE.forget(row.token_hash)
