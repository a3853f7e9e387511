"""Bearer tokens for the SCIM endpoint (bound to one directory) and the admin API.

Invariants: only the SHA-256 of a token is stored; the secret is returned once, by
`create_token`; an expired token never authenticates; a revoked one stops authenticating at
once in the process that revoked it, and within `CACHE_TTL_S` seconds in any other process
(`TokenCache`: the SCIM endpoint remembers a live token that long instead of reading it on
every request).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import event, or_, select
from sqlmodel import Session

from syncd.service import audit, limits
from syncd.service.context import Actor
from syncd.service.errors import InvalidValue, NotFound
from syncd.store.models import Directory, ScimToken, utcnow

PREFIX = "syncd_"
#: last_used_at is written at most this often per token (seconds), not on every request.
LAST_USED_RESOLUTION = 60
#: How long (seconds) a live token is trusted without reading its row again. A revocation made
#: by another process (`syncd token revoke` while `syncd serve` runs) takes effect within it.
CACHE_TTL_S = 5.0


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def ensure_directory(session: Session, *, name: str, kind: str) -> Directory:
    """The directory row for `name`, created if missing (kind is recorded at creation)."""
    row = session.get(Directory, name)
    if row is None:
        row = Directory(name=name, kind=kind)
        session.add(row)
        session.flush()
    return row


def create_token(
    session: Session,
    *,
    directory: str | None,
    kind: str = "scim",
    name: str = "",
    expires_in: timedelta | None = None,
    created_by: str = "cli",
) -> tuple[ScimToken, str]:
    """A new token and its secret (shown once). SCIM tokens need a directory; admin ones none."""
    if kind not in ("scim", "admin"):
        raise InvalidValue(f"token kind must be scim or admin, not {kind!r}")
    if kind == "scim" and not directory:
        raise InvalidValue("a SCIM token must be bound to a directory")
    limits.check_text(name, where="the token name", max_length=256, folded=False)  # tokens.name column
    if directory:
        ensure_directory(session, name=directory, kind="scim")
    secret = PREFIX + secrets.token_urlsafe(32)
    row = ScimToken(
        id=secrets.token_hex(8),
        kind=kind,
        directory=directory if kind == "scim" else None,
        name=name,
        token_hash=hash_token(secret),
        prefix=secret[: len(PREFIX) + 6],
        expires_at=utcnow() + expires_in if expires_in else None,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=Actor("manual", row.directory, created_by),
        action="token.create",
        resource_type="token",
        resource_id=row.id,
        after={"kind": kind, "name": name, "expires_at": _iso(row.expires_at)},
    )
    return row, secret


def authenticate(session: Session, secret: str, *, kind: str = "scim") -> ScimToken | None:
    """The live token whose secret this is, or None. Comparison is by hash, in constant time."""
    if not secret:
        return None
    digest = hash_token(secret)
    row = session.execute(select(ScimToken).where(ScimToken.token_hash == digest)).scalars().first()
    if row is None or not hmac.compare_digest(row.token_hash, digest) or row.kind != kind:
        return None
    now = utcnow()
    if row.revoked_at is not None or (row.expires_at is not None and _aware(row.expires_at) <= now):
        return None
    if row.last_used_at is None or (now - _aware(row.last_used_at)).total_seconds() > LAST_USED_RESOLUTION:
        row.last_used_at = now
        session.add(row)
    return row


def list_tokens(session: Session, *, directory: str | None = None) -> Sequence[ScimToken]:
    q = select(ScimToken).order_by(ScimToken.created_at)
    if directory is not None:
        q = q.where(ScimToken.directory == directory)
    return session.execute(q).scalars().all()


def revoke_token(session: Session, *, token: str, revoked_by: str = "cli") -> ScimToken:
    """Revoke by id or by the printed prefix; idempotent."""
    q = select(ScimToken).where(or_(ScimToken.id == token, ScimToken.prefix == token))
    rows = session.execute(q).scalars().all()
    if not rows:
        raise NotFound(f"no token {token!r}")
    if len(rows) > 1:
        raise InvalidValue(f"{token!r} names several tokens; use the id")
    row = rows[0]
    CACHE.forget(row.token_hash)
    # and again once committed: a request that read the row before the commit may have cached it
    event.listen(session, "after_commit", lambda _s: CACHE.forget(row.token_hash), once=True)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        audit.record(
            session,
            actor=Actor("manual", row.directory, revoked_by),
            action="token.revoke",
            resource_type="token",
            resource_id=row.id,
        )
    return row


@dataclass(frozen=True, slots=True)
class CachedToken:
    """What a request needs of a live token: its id, kind and directory, and when it expires."""

    id: str
    kind: str
    directory: str | None
    expires_at: datetime | None  # aware UTC
    seen: float  # time.monotonic() when its row was read


class TokenCache:
    """Live tokens by (store, hash), trusted for `ttl_s` seconds after their row was read.

    Only tokens that authenticated are kept (an unknown secret is looked up every time); an
    entry past its token's `expires_at` is never used; `forget` drops a hash from every store.
    Thread-safe; at most `size` entries (the oldest half is dropped when full).
    """

    def __init__(self, ttl_s: float = CACHE_TTL_S, size: int = 4096) -> None:
        self.ttl_s, self.size = ttl_s, size
        self._rows: dict[tuple[str, str], CachedToken] = {}
        self._forgotten: dict[str, float] = {}  # hash -> time.monotonic() of its last forget
        self._lock = threading.Lock()

    def get(self, store: str, secret: str, *, kind: str = "scim") -> CachedToken | None:
        """The cached live token of `secret` in `store`, or None (then read the store)."""
        hit = self._rows.get((store, hash_token(secret)))
        if hit is None or hit.kind != kind or time.monotonic() - hit.seen >= self.ttl_s:
            return None
        if hit.expires_at is not None and hit.expires_at <= utcnow():
            return None
        return hit

    def put(self, store: str, row: ScimToken, *, seen: float) -> None:
        """Remember `row` as read at `seen` (time.monotonic() taken before the read); a read that
        began before the token was last forgotten (a revocation racing it) is not kept."""
        expires = _aware(row.expires_at) if row.expires_at else None
        entry = CachedToken(row.id, row.kind, row.directory, expires, seen)
        with self._lock:
            if seen <= self._forgotten.get(row.token_hash, float("-inf")):
                return
            if len(self._rows) >= self.size:
                for key in list(self._rows)[: self.size // 2]:
                    del self._rows[key]
            self._rows[(store, row.token_hash)] = entry

    def forget(self, token_hash: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in [k for k in self._rows if k[1] == token_hash]:
                del self._rows[key]
            if len(self._forgotten) >= self.size:  # a read older than a minute no longer races
                self._forgotten = {h: t for h, t in self._forgotten.items() if now - t < 60}
            self._forgotten[token_hash] = now


#: The process's token cache (the SCIM endpoint's; `revoke_token` invalidates it).
CACHE = TokenCache()


def _aware(dt: datetime) -> datetime:
    """SQLite returns naive datetimes for timezone-aware columns; they are UTC."""
    from datetime import UTC

    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None
