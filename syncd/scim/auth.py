"""Bearer token → Actor of the token's directory.

The token is checked in its own short read transaction before the operation's transaction
begins, so an unauthenticated request is refused (401) before its body is even parsed.
`tokens.authenticate` wants to record `last_used_at` (at most once a minute per token); that
write is done in a separate small write transaction, never inside a read transaction (on
SQLite, upgrading a read transaction to a write one fails under concurrent writers) and never
inside the operation (it would hold the token's row lock for the request's duration).
"""

from __future__ import annotations

from sqlalchemy import Engine

from syncd.scim.errors import Unauthorized
from syncd.service import tokens
from syncd.service.context import Actor
from syncd.store import session_scope


def bearer_secret(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; Unauthorized otherwise."""
    if not authorization:
        raise Unauthorized("missing bearer token (Authorization: Bearer <token>)", error=None)
    scheme, _, secret = authorization.strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise Unauthorized("the Authorization header must be 'Bearer <token>'", error="invalid_request")
    return secret


def authenticate(engine: Engine, authorization: str | None) -> Actor:
    """The Actor for a request's Authorization header; Unauthorized for a missing, unknown,
    revoked or expired token."""
    secret = bearer_secret(authorization)
    with session_scope(engine, write=False) as s, s.no_autoflush:
        token = tokens.authenticate(s, secret)
        if token is None:
            raise Unauthorized("the token is unknown, revoked or expired")
        actor = Actor(feed="scim", directory=token.directory, name=f"token:{token.id}")
        touched = s.is_modified(token)
        if touched:
            s.expire(token)  # drop the pending last_used_at change from this read transaction
    if touched:
        with session_scope(engine) as s:
            tokens.authenticate(s, secret)
    return actor
