"""Send a TargetPlan to the target, recording each acknowledged write in the id map.

Order: adoptions; users (create, replace, activate); teams (create with their first members,
rename); member adds then removes, one PATCH per team and chunk of `member_chunk`; then users
that left and teams that left. Objects are sent by `concurrency` threads.

Crash safety: creates are recorded as pending before they are sent, and a pending object is
looked up (filter checked client-side) before it is created again; the target's id is written
only once it answered. So a kill at any point is followed by adoption, never a duplicate.

Per-object failures (a 400, a conflict that no lookup resolves, a userName the target gave to
another object) are collected in `errors` and the rest goes on. Failures of the target as a
whole (refused, unreachable, throttled or 5xx after retries) stop the apply: they propagate.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from syncd.config.models import ScimTarget
from syncd.targets import state as st
from syncd.targets.apply_teams import TeamWrites
from syncd.targets.client import ScimClient
from syncd.targets.desired import Desired, DesiredUser
from syncd.targets.errors import Conflict, Gone, Rejected, Transient
from syncd.targets.plan import TargetPlan
from syncd.targets.state import IdMap, Mapped

FLUSH_EVERY = 200
LOOKUP_RETRIES = 4


@dataclass
class ApplyResult:
    applied: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


class Applier(TeamWrites):
    """Applies plans for one target; `idmap` is kept current as writes are acknowledged."""

    def __init__(
        self,
        engine: Engine,
        name: str,
        settings: ScimTarget,
        client: ScimClient,
        idmap: IdMap,
        *,
        careful: bool = False,
        on_progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.engine, self.name, self.settings, self.client = engine, name, settings, client
        self.idmap = idmap
        self.careful = careful
        self.on_progress = on_progress
        self.result = ApplyResult()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._buffer: dict[tuple[str, str], Mapped] = {}
        self._owners = {
            (m.kind, m.remote_id): lid for (_, lid), m in idmap.items() if m.remote_id is not None
        }

    # -- bookkeeping --------------------------------------------------------------------------

    def _count(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self.result.applied[kind] = self.result.applied.get(kind, 0) + n

    def _error(self, msg: str) -> None:
        with self._lock:
            self.result.errors.append(msg)

    def _record(self, m: Mapped) -> None:
        with self._lock:
            old = self.idmap.get((m.kind, m.local_id))
            if old is not None and old.remote_id is not None:
                self._owners.pop((m.kind, old.remote_id), None)
            self.idmap[(m.kind, m.local_id)] = m
            if m.remote_id is not None:
                self._owners[(m.kind, m.remote_id)] = m.local_id
            self._buffer[(m.kind, m.local_id)] = m
            full = len(self._buffer) >= FLUSH_EVERY
        if full:
            self.flush()

    def flush(self) -> None:
        """Write the buffered map rows. Flushes are serialised in buffer order: two racing
        flushes committing out of order would let an older row of an object overwrite a newer."""
        with self._flush_lock:
            with self._lock:
                rows, self._buffer = list(self._buffer.values()), {}
            st.save(self.engine, self.name, rows)

    def _owner(self, kind: str, remote_id: str) -> str | None:
        with self._lock:
            return self._owners.get((kind, remote_id))

    def _pending(self, kind: str, lids: Iterable[str]) -> set[str]:
        """Record creates about to be sent; returns the ids that were already pending."""
        before = {
            lid for lid in lids if (kind, lid) in self.idmap and self.idmap[(kind, lid)].remote_id is None
        }
        rows = [
            Mapped(kind, lid, None)
            for lid in lids
            if (kind, lid) not in self.idmap or self.idmap[(kind, lid)].remote_id is not None
        ]
        for m in rows:
            self.idmap[(m.kind, m.local_id)] = m
        st.save(self.engine, self.name, rows)
        return before

    def _parallel(self, phase: str, items: list[Any], fn: Callable[[Any], None]) -> None:
        if not items:
            return
        total, done = len(items), 0
        if self.settings.concurrency == 1 or total == 1:
            for it in items:
                fn(it)
                done += 1
                if self.on_progress:
                    self.on_progress(phase, done, total)
            return
        with ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix=f"target-{self.name}") as pool:
            futures = {pool.submit(fn, it) for it in items}
            while futures:
                finished, futures = wait(futures, return_when=FIRST_EXCEPTION)
                for f in finished:
                    exc = f.exception()
                    if exc is not None:
                        for rest in futures:
                            rest.cancel()
                        raise exc
                    done += 1
                if self.on_progress:
                    self.on_progress(phase, done, total)

    # -- the plan -----------------------------------------------------------------------------

    def apply(self, plan: TargetPlan, desired: Desired) -> ApplyResult:
        try:
            self._apply(plan, desired)
        finally:
            self.flush()
        return self.result

    def _apply(self, plan: TargetPlan, desired: Desired) -> None:
        updating = {u.local_id for u, _ in plan.update_users}
        renaming = {t.local_id for t, _ in plan.rename_teams}
        for kind, lid, rid in plan.adopt:
            owner = self._owner(kind, rid)
            if owner is not None and owner != lid:
                self._error(f"{kind} {lid}: the target's {rid} is already mapped to {owner}; not adopted")
                continue
            if kind == "user":
                d = desired.users.get(lid)
                digest = d.digest() if d is not None and lid not in updating else None
                self._record(Mapped("user", lid, rid, digest, None))
            else:
                t = desired.teams.get(lid)
                self._record(Mapped("team", lid, rid, t.digest() if t and lid not in renaming else None))
            self._count(f"adopt_{kind}")
        self.flush()
        was_pending = self._pending("user", [u.local_id for u in plan.create_users])
        self._parallel(
            "create users",
            plan.create_users,
            lambda d: self._create_user(d, look_first=self.careful or d.local_id in was_pending),
        )
        self._parallel("update users", plan.update_users, lambda it: self._put_user(*it))
        self._parallel("activate users", plan.activate_users, lambda it: self._set_active(it[0], it[1], True))
        self.flush()
        adds = {k: list(v) for k, v in plan.add_members.items()}
        was_pending = self._pending("team", [t.local_id for t in plan.create_teams])
        self._parallel(
            "create teams",
            plan.create_teams,
            lambda t: self._create_team(t, adds, look_first=self.careful or t.local_id in was_pending),
        )
        self._parallel("rename teams", plan.rename_teams, lambda it: self._rename_team(it[0], it[1], desired))
        self.flush()
        self._parallel(
            "add members", sorted(adds.items()), lambda it: self._add_members(it[0], it[1], desired)
        )
        self._parallel(
            "remove members",
            sorted(plan.remove_members.items()),
            lambda it: self._remove_members(it[0], it[1]),
        )
        self._parallel("users left", plan.leave_users, lambda it: self._leave_user(*it))
        self._parallel("teams left", plan.delete_teams, lambda it: self._delete_team(*it))
        self.flush()
        if plan.forget:
            st.forget(self.engine, self.name, plan.forget)
            for k in plan.forget:
                self.idmap.pop(k, None)

    # -- users --------------------------------------------------------------------------------

    def _lookup_user(self, d: DesiredUser) -> dict[str, Any] | None:
        """The target's copy of a user whose create may have happened: by userName, then by
        externalId (where the target filters on it), then by email."""
        found = self.client.find("Users", "userName", d.user_name)
        if not found:
            found = self.client.find("Users", "externalId", d.external_id, scan=False)
        if not found and d.email:
            want = d.email.casefold()
            found = [
                r
                for r in self.client.find("Users", "userName", d.email)
                if any(
                    isinstance(e, dict) and str(e.get("value", "")).casefold() == want
                    for e in r.get("emails") or []
                )
            ]
        return found[0] if len(found) == 1 else None

    def _create_user(self, d: DesiredUser, *, look_first: bool) -> None:
        for attempt in range(LOOKUP_RETRIES):
            if look_first or attempt:
                got = self._lookup_user(d)
                if got is not None:
                    self._adopt_user(d, got["id"])
                    return
            try:
                got = self.client.create("Users", d.body())
            except Transient:
                if attempt + 1 == LOOKUP_RETRIES:
                    raise
                continue  # the create may have happened: look before trying again
            except Conflict as exc:
                found = self._lookup_user(d)
                if found is None:
                    self._error(f"user {d.user_name}: {exc.message}; no matching user found to adopt")
                    self._record(Mapped("user", d.local_id, None))
                    return
                self._adopt_user(d, found["id"])
                return
            except Rejected as exc:
                self._error(f"user {d.user_name}: {exc.message}")
                return
            rid = got["id"]
            owner = self._owner("user", rid)
            if owner is not None and owner != d.local_id:
                # an upsert by email: the target merged this user into one syncd already maps
                self._error(
                    f"user {d.user_name}: the target answered with {rid}, the user of local id {owner} "
                    "(the same email?); not delivered"
                )
                return
            self._record(Mapped("user", d.local_id, rid, d.digest(), True))
            self._count("create_user")
            return

    def _adopt_user(self, d: DesiredUser, rid: str) -> None:
        owner = self._owner("user", rid)
        if owner is not None and owner != d.local_id:
            self._error(f"user {d.user_name}: the target's {rid} is already mapped to local id {owner}")
            return
        self._record(Mapped("user", d.local_id, rid, None, None))
        self._count("adopt_user")
        self._put_user(d, rid)

    def _put_user(self, d: DesiredUser, rid: str) -> None:
        try:
            self.client.replace("Users", rid, {**d.body(), "id": rid})
        except Gone:
            self._create_user(d, look_first=False)  # deleted behind syncd's back: recreate, remap
            return
        except (Rejected, Conflict) as exc:
            self._error(f"user {d.user_name}: {exc.message}")
            return
        self._record(Mapped("user", d.local_id, rid, d.digest(), True))
        self._count("update_user")

    def _set_active(self, lid: str, rid: str, active: bool) -> bool:
        try:
            self.client.patch("Users", rid, [{"op": "replace", "path": "active", "value": active}])
        except Gone:
            return False
        except Rejected as exc:
            self._error(f"user {lid}: {exc.message}")
            return True
        m = self.idmap.get(("user", lid))
        self._record(Mapped("user", lid, rid, m.digest if m else None, active, left=not active))
        self._count("activate_user" if active else "deactivate_user")
        return True

    def _leave_user(self, lid: str, rid: str) -> None:
        if self.settings.on_user_left == "delete":
            try:
                self.client.delete("Users", rid)
                self._count("delete_user")
            except Gone:
                pass
            self._forget("user", lid)
            return
        if not self._set_active(lid, rid, False):
            self._forget("user", lid)

    def _forget(self, kind: str, lid: str) -> None:
        with self._flush_lock:  # not overtaken by a flush that already took this row
            with self._lock:
                m = self.idmap.pop((kind, lid), None)
                if m is not None and m.remote_id is not None:
                    self._owners.pop((kind, m.remote_id), None)
                self._buffer.pop((kind, lid), None)
            st.forget(self.engine, self.name, [(kind, lid)])
