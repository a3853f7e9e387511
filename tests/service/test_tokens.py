"""Tokens: hash-only storage, directory binding, revocation and expiry."""

from __future__ import annotations

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
