"""On-login sync: one user's groups, fresh from the IdP, at the moment the user signs in.

`LoginService.sync(directory, user)` fetches the user's transitive groups within the
directory's `login_time_budget` (seconds). The changes are the reconcile diff over a one-user
scope (`syncd.reconcile.login`): create the user if the store has none, create (or restore) the
in-scope teams it is missing (named as a pull names them), add the user to the teams of its
groups and remove it from the other teams of that directory whose group the connector's
per-user lookup can report (`UserGroups.reports`: a lookup blind to a membership, such as
Google's to whole-customer groups, never causes its removal). Manual memberships are never
removed; teams of other directories, and teams without an external id, are not touched; a
login never renames or archives a team, nor changes a stored user (the next pull does).

The store is first read in a read-only transaction: when it already holds all of that (the
common login), the answer comes from that read and nothing is written or locked. Otherwise
the changes are written in one transaction, a few statements whatever the number of groups.

If the IdP fails or is slower than the budget, nothing is written: the answer is the stored
teams with `stale: true`. Concurrent logins of one user are serialised (PostgreSQL: a
transaction-level advisory lock on directory and user; SQLite: one writer at a time), and two
logins creating the same team race safely (the loser uses the winner's row), as does a login racing
a pull's apply that creates the same user or team (the login retries and adopts the pull's row).

Connectors are kept per directory on one event loop thread (SDK clients are bound to a loop),
so a login does not pay for a new client and token each time.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, or_, select, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from connectors.base import Connector, ConnectorError
from connectors.factory import build_connector
from syncd.config import Settings
from syncd.daemon.metrics import Metrics
from syncd.reconcile import login as one_user
from syncd.reconcile.apply import user_body
from syncd.reconcile.clean import clean_user_groups
from syncd.reconcile.options import run_options
from syncd.reconcile.snapshot import SnapshotGroup, UserGroups
from syncd.reconcile.view import StoredUser
from syncd.service import limits, tokens
from syncd.service import users as user_ops
from syncd.service.context import Actor
from syncd.service.errors import Conflict, InvalidValue
from syncd.service.resource import fold
from syncd.store import session_scope
from syncd.store.models import User, UserEmail

log = logging.getLogger("syncd.daemon.login")

#: Extra seconds the caller waits past the budget for the loop thread to hand back a timeout.
BACKSTOP_S = 5.0
WRITE_ATTEMPTS = 3


class LoginError(Exception):
    status = 400


class UnknownDirectory(LoginError):
    status = 404


class PushOnly(LoginError):
    status = 400


class StoreConflict(LoginError):
    """The IdP's user cannot be written: another user of the directory holds its userName (the
    IdP recreated it under a new id while the store keeps the old one). Nothing was written."""

    status = 409


def _change(t: tuple[str, str, str]) -> dict[str, Any]:
    return {"id": t[0], "external_id": t[1], "display_name": t[2]}


@dataclass
class LoginResult:
    directory: str
    user_key: str
    found: bool = False
    stale: bool = False
    user: dict[str, Any] | None = None
    teams: list[dict[str, Any]] = field(default_factory=list)
    added: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    created_teams: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    api_calls: int = 0
    seconds: float = 0.0

    @property
    def result(self) -> str:
        return "stale" if self.stale else ("fresh" if self.found else "unknown_user")

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "user_key": self.user_key,
            "found": self.found,
            "stale": self.stale,
            "user": self.user,
            "teams": self.teams,
            "changes": {"added": self.added, "removed": self.removed, "created_teams": self.created_teams},
            "notes": self.notes,
            "error": self.error,
            "api_calls": self.api_calls,
            "seconds": round(self.seconds, 4),
        }


class LoginService:
    def __init__(
        self,
        engine: Engine,
        settings: Callable[[], Settings],
        *,
        metrics: Metrics | None = None,
        connector_factory: Callable[..., Connector] = build_connector,
    ) -> None:
        self.engine, self.settings, self.metrics = engine, settings, metrics
        self.connector_factory = connector_factory
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="login-loop", daemon=True)
        self._thread.start()
        self._connectors: dict[str, tuple[Any, Connector]] = {}
        self._user_locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    # -- public ---------------------------------------------------------------------------

    def sync(self, directory: str, user: str) -> LoginResult:
        t0 = time.perf_counter()
        d = self.settings().directories.get(directory)
        if d is None:
            raise UnknownDirectory(f"no directory named {directory!r}")
        if d.kind == "scim":
            raise PushOnly(f"{directory!r} is push-only (kind scim): its IdP writes through /scim/v2")
        try:  # before the IdP's query, the store's lookup (PostgreSQL refuses a NUL) or a log sees it
            limits.check_text(user, where="the user", max_length=limits.NAME_MAX, folded=False)
        except InvalidValue as exc:
            raise LoginError(f"{exc.detail}: give the user's IdP id, userName or email") from None
        result = LoginResult(directory, user)
        budget = float(d.login_time_budget)
        ug: UserGroups | None = None
        try:
            fut = asyncio.run_coroutine_threadsafe(self._fetch(directory, d, user, budget), self._loop)
            ug = clean_user_groups(fut.result(timeout=budget + BACKSTOP_S))
        except (TimeoutError, FutureTimeout):
            result.error = f"the IdP did not answer within the login time budget ({budget:g}s)"
        except ConnectorError as exc:
            result.error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a bug in a connector must not break sign-in: answer stale
            log.exception("login fetch crashed")
            result.error = f"internal error: {type(exc).__name__}"
        if ug is None:
            result.stale = True
            self._stored(result, user)
        elif ug.user is None:
            result.found = False
            result.error = "the IdP does not know this user"
            result.api_calls = ug.stats.api_calls
        else:
            result.found = True
            result.api_calls = ug.stats.api_calls
            with self._user_lock(directory, ug.user.external_id):
                try:
                    self._write(result, directory, d, ug)
                except Conflict as exc:  # the transaction was rolled back: nothing written
                    raise StoreConflict(f"{directory}: {exc.detail}") from None
        if ug is not None and self.metrics is not None:
            self.metrics.record_calls(directory, ug.stats.api_calls, ug.stats.throttles)
        result.seconds = time.perf_counter() - t0
        if self.metrics is not None:
            self.metrics.login_seconds.labels(directory, result.result).observe(result.seconds)
        log.log(
            logging.WARNING if result.stale else logging.INFO,
            "login sync",
            extra={
                "directory": directory,
                "result": result.result,
                "user_id": (result.user or {}).get("id"),
                "teams": len(result.teams),
                "added": len(result.added),
                "removed": len(result.removed),
                "created_teams": len(result.created_teams),
                "seconds": round(result.seconds, 4),
                "error": result.error,
            },
        )
        return result

    def reset(self) -> None:
        """Drop the cached connectors (after a config reload)."""
        with self._guard:
            old, self._connectors = list(self._connectors.values()), {}
        for _, conn in old:
            self._close(conn)

    def close(self) -> None:
        """Close the connectors, cancel what still runs on the loop (a fetch past its budget,
        an SDK's background task), then stop the loop: no task is left pending at exit."""
        self.reset()
        try:
            asyncio.run_coroutine_threadsafe(_cancel_pending(), self._loop).result(timeout=5)
        except Exception:
            log.warning("cancelling the login loop's tasks failed", exc_info=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()

    # -- fetch ----------------------------------------------------------------------------

    def _connector(self, name: str, d: Any, budget: float) -> Connector:
        with self._guard:
            cached = self._connectors.get(name)
            if cached is not None and cached[0] is d:
                return cached[1]
            conn = self.connector_factory(name, d, time_budget=budget)
            self._connectors[name] = (d, conn)
        if cached is not None:
            self._close(cached[1])
        return conn

    async def _fetch(self, name: str, d: Any, user: str, budget: float) -> UserGroups:
        conn = self._connector(name, d, budget)
        return await asyncio.wait_for(conn.user_groups(user), timeout=budget)

    def _close(self, conn: Connector) -> None:
        try:
            asyncio.run_coroutine_threadsafe(conn.aclose(), self._loop).result(timeout=10)
        except Exception:
            log.warning("closing a login connector failed", exc_info=True)

    def _user_lock(self, directory: str, external_id: str) -> threading.Lock:
        with self._guard:
            return self._user_locks.setdefault((directory, external_id), threading.Lock())

    # -- store ----------------------------------------------------------------------------

    def _stored(self, result: LoginResult, key: str) -> None:
        """Fill `result` with what the store holds for the user (the stale answer)."""
        with session_scope(self.engine, write=False) as s:
            row = _find_stored_user(s, result.directory, key)
            if row is not None:
                result.user = _user(row)
                result.teams = [t.to_dict() for t in one_user.user_teams(s, row.id)]

    def _unchanged(self, result: LoginResult, name: str, ug: UserGroups, kept: list[SnapshotGroup]) -> bool:
        """Whether the store already holds what this login would write (then `result` is filled
        in): a read-only transaction, without the user's lock or the writer's (SQLite), so that
        the common login neither waits for a pull's write nor writes anything."""
        assert ug.user is not None
        with session_scope(self.engine, write=False) as s:
            found = one_user.read_user(s, name, ug.user.external_id)
            if found is None:
                return False
            user, held = found
            view = one_user.read_scope(s, name, user, [g.external_id for g in kept], held)
            if not one_user.login_plan(ug, kept, view).empty:
                return False
        result.user = _user(user)
        result.teams = [t.to_dict() for t in held]
        result.notes = list(ug.notes)
        return True

    def _write(self, result: LoginResult, name: str, d: Any, ug: UserGroups) -> None:
        assert ug.user is not None
        scope = run_options(d).scope
        kept = sorted((g for g in ug.groups if scope.keeps(g)), key=lambda g: g.external_id)
        in_scope = scope.users == "all" or bool(kept)
        if self._unchanged(result, name, ug, kept):
            return
        actor = Actor("login", name, "login")
        for attempt in range(WRITE_ATTEMPTS):
            result.added, result.removed, result.created_teams, result.notes = [], [], [], []
            try:
                with session_scope(self.engine) as s:
                    _xact_lock(s, name, ug.user.external_id)
                    tokens.ensure_directory(s, name=name, kind=d.kind)
                    row = user_ops.find_user(s, actor=actor, external_id=ug.user.external_id)
                    held: list[one_user.HeldTeam] | None = None  # None: read in read_scope
                    if row is None:
                        if not in_scope:
                            result.notes.append("the user is outside this directory's scope")
                            return
                        try:
                            with s.begin_nested():
                                row = user_ops.create_user(s, actor=actor, body=user_body(ug.user))
                            held = []  # a user created now is in no team yet
                        except InvalidValue as exc:  # beyond the service's limits even cleaned
                            result.notes.append(f"the user was not created: {exc.detail}")
                            return
                    stored = StoredUser(row.id, ug.user.external_id, row.user_name, row.active)
                    view = one_user.read_scope(s, name, stored, [g.external_id for g in kept], held)
                    plan = one_user.login_plan(ug, kept, view)
                    changes = one_user.apply_login_plan(s, actor, plan, view)
                    result.created_teams = [_change(t) for t in changes.created]
                    result.added = [_change(t) for t in changes.added]
                    result.removed = [_change(t) for t in changes.removed]
                    result.notes.extend(changes.notes)
                    result.notes.extend(ug.notes)
                    result.user = _user(row)
                    # a planned change may have been made meanwhile by a concurrent writer: read again
                    held = view.held if plan.empty else one_user.user_teams(s, row.id)
                    result.teams = [t.to_dict() for t in held]
                return
            except (OperationalError, Conflict, one_user.LostRace) as exc:  # lost a race?
                if attempt == WRITE_ATTEMPTS - 1:
                    if isinstance(exc, one_user.LostRace):
                        raise Conflict(str(exc)) from exc
                    raise
                if not isinstance(exc, one_user.LostRace):
                    with session_scope(self.engine, write=False) as s:
                        if not _lost_race(s, exc, name, ug.user.external_id):
                            raise
                log.info("login write retried after a concurrent writer", exc_info=True)


async def _cancel_pending() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _lost_race(s: Session, exc: Exception, directory: str, external_id: str) -> bool:
    """Whether a retry can complete the write: after a deadlock or serialisation failure, or a
    Conflict while a concurrent pull or login created this user (the retry adopts its row; on
    PostgreSQL the row may show up between the lookup and the uniqueness check). Any other
    Conflict (a userName another user holds) is final."""
    if not isinstance(exc, Conflict):
        return True
    actor = Actor("login", directory, "login")
    return user_ops.find_user(s, actor=actor, external_id=external_id) is not None


def _xact_lock(s: Session, directory: str, external_id: str) -> None:
    """PostgreSQL: serialise writes for one user until the transaction ends."""
    if s.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.sha256(f"syncd-login:{directory}:{external_id}".encode()).digest()[:8]
    s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": int.from_bytes(digest, "big", signed=True)})


def _find_stored_user(s: Session, directory: str, key: str) -> User | None:
    k = fold(key)
    by_mail = select(UserEmail.user_id).where(UserEmail.value_key == k)
    q = select(User).where(
        User.directory == directory,
        or_(User.external_id == key, User.user_name_key == k, User.id.in_(by_mail)),  # type: ignore[attr-defined]
    )
    return s.execute(q).scalars().first()


def _user(row: User | StoredUser) -> dict[str, Any]:
    return {"id": row.id, "external_id": row.external_id, "user_name": row.user_name, "active": row.active}
