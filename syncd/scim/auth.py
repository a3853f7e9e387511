"""Bearer token → Actor of the token's directory.

The token is checked before the operation's transaction begins, so an unauthenticated request
is refused (401) before its body is even parsed. A live token is remembered for
`tokens.CACHE_TTL_S` seconds (`tokens.CACHE`, keyed by store), so most requests authenticate
without a query; the cache never outlives the token's `expires_at`, and a revocation in this
process drops it at once (in another process: within the TTL).

On a cache miss the token is read in its own short read transaction. `tokens.authenticate`
wants to record `last_used_at` (at most once a minute per token); that write is done in a
separate small write transaction, never inside a read transaction (on SQLite, upgrading a read
transaction to a write one fails under concurrent writers) and never inside the operation (it
would hold the token's row lock for the request's duration).
"""

from __future__ import annotations

import time

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


def store_key(engine: Engine) -> str:
    """The cache's name for a store (its URL, password hidden)."""
    return engine.url.render_as_string(hide_password=True)


def cached(engine: Engine, secret: str) -> Actor | None:
    """The Actor of a token the cache still trusts, or None (no query is made)."""
    hit = tokens.CACHE.get(store_key(engine), secret)
    return None if hit is None else _actor(hit.id, hit.directory)


def authenticate(engine: Engine, authorization: str | None) -> Actor:
    """The Actor for a request's Authorization header; Unauthorized for a missing, unknown,
    revoked or expired token."""
    secret = bearer_secret(authorization)
    actor = cached(engine, secret)
    if actor is not None:
        return actor
    seen = time.monotonic()
    with session_scope(engine, write=False) as s, s.no_autoflush:
        token = tokens.authenticate(s, secret)
        if token is None:
            raise Unauthorized("the token is unknown, revoked or expired")
        actor = _actor(token.id, token.directory)
        touched = s.is_modified(token)
        if touched:
            s.expire(token)  # drop the pending last_used_at change from this read transaction
        else:
            tokens.CACHE.put(store_key(engine), token, seen=seen)
    if touched:
        with session_scope(engine) as s:
            token = tokens.authenticate(s, secret)
            if token is None:  # revoked in between
                raise Unauthorized("the token is unknown, revoked or expired")
            tokens.CACHE.put(store_key(engine), token, seen=seen)
    return actor


def _actor(token_id: str, directory: str | None) -> Actor:
    return Actor(feed="scim", directory=directory, name=f"token:{token_id}")
