"""Apply a Plan through the service layer, in batches; each batch is one transaction.

A crash between batches leaves every batch either written or not; the next run diffs again
and completes the rest (apply is idempotent at the level of a whole run).
Order: teams and users first (so members can name them), reactivations before member adds,
member removals, then deactivations and archives last.

Creates, (de)activations and member changes go through `syncd.service.bulk` (a few
statements per batch, whatever its size); attribute updates, renames and (un)archiving,
which a sync makes a few of at a time, through the per-row operations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session

from syncd.reconcile.plan import MemberChange, Plan, TeamChange, UserChange
from syncd.reconcile.snapshot import SnapshotUser
from syncd.service import bulk, teams, users
from syncd.service.context import Actor
from syncd.store import session_scope
from syncd.store.models import Team, User

#: users or teams per transaction
BATCH = 5000
#: memberships per transaction
MEMBER_BATCH = 50_000

#: Called after each batch with (phase, objects done so far in that phase, total in that phase).
ApplyProgress = Callable[[str, int, int], None]


@dataclass
class ApplyResult:
    applied: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, n: int = 1) -> None:
        self.applied[kind] = self.applied.get(kind, 0) + n


def user_body(u: SnapshotUser) -> dict[str, Any]:
    body: dict[str, Any] = {"userName": u.user_name, "externalId": u.external_id, "active": u.active}
    if u.display_name:
        body["displayName"] = u.display_name
    name = {k: v for k, v in (("givenName", u.given_name), ("familyName", u.family_name)) if v}
    if name:
        body["name"] = name
    if u.email:
        body["emails"] = [{"value": u.email, "type": "work", "primary": True}]
    return body


def _update_ops(u: SnapshotUser) -> list[dict[str, Any]]:
    value: dict[str, Any] = {
        "userName": u.user_name,
        "displayName": u.display_name,
        "name.givenName": u.given_name,
        "name.familyName": u.family_name,
    }
    ops: list[dict[str, Any]] = [{"op": "replace", "value": {k: v for k, v in value.items() if v}}]
    ops += [
        {"op": "remove", "path": p}
        for p, v in (
            ("displayName", u.display_name),
            ("name.givenName", u.given_name),
            ("name.familyName", u.family_name),
        )
        if not v
    ]
    if u.email:
        ops.append({"op": "replace", "path": "emails[primary eq true].value", "value": u.email})
    else:  # the IdP dropped the address: so does the store (else the diff repeats every run)
        ops.append({"op": "remove", "path": "emails"})
    return ops


def apply_plan(
    engine: Engine, plan: Plan, actor: Actor, progress: ApplyProgress | None = None
) -> ApplyResult:
    result = ApplyResult()
    if plan.empty:
        return result
    tick = progress or (lambda *_: None)
    user_ids = _ids(engine, User, plan.directory)
    team_ids = _ids(engine, Team, plan.directory)

    first = [u for u in plan.users if u.kind in ("create_user", "update_user", "reactivate_user")]
    last = [u for u in plan.users if u.kind == "deactivate_user"]
    _users(engine, actor, first, user_ids, result, tick)
    early = [t for t in plan.teams if t.kind != "archive_team"]
    _teams(engine, actor, early, team_ids, result, tick)
    adds = [c for c in plan.members if c.kind == "add_members"]
    removes = [c for c in plan.members if c.kind != "add_members"]
    _members(engine, actor, adds, user_ids, team_ids, result, tick)
    _members(engine, actor, removes, user_ids, team_ids, result, tick)
    _users(engine, actor, last, user_ids, result, tick)
    _teams(engine, actor, [t for t in plan.teams if t.kind == "archive_team"], team_ids, result, tick)
    return result


def _ids(engine: Engine, model: Any, directory: str) -> dict[str, str]:
    with session_scope(engine, write=False) as s:
        q = select(model.external_id, model.id).where(
            model.directory == directory, model.external_id.is_not(None)
        )
        return dict(s.execute(q).tuples().all())


def _in_batches(
    engine: Engine,
    changes: list[Any],
    phase: str,
    result: ApplyResult,
    tick: ApplyProgress,
    write: Callable[[Session, list[Any]], None],
) -> None:
    """`write` each BATCH of changes in a transaction of its own, then count and report it."""
    for start in range(0, len(changes), BATCH):
        part = changes[start : start + BATCH]
        with session_scope(engine) as s:
            write(s, part)
        for c in part:
            result.add(c.kind)
        tick(phase, start + len(part), len(changes))


def _users(
    engine: Engine,
    actor: Actor,
    changes: list[UserChange],
    ids: dict[str, str],
    result: ApplyResult,
    tick: ApplyProgress,
) -> None:
    def write(s: Session, part: list[UserChange]) -> None:
        creates = [c for c in part if c.kind == "create_user"]
        bodies = [user_body(c.user) for c in creates if c.user is not None]
        for c, new in zip(creates, bulk.create_users(s, actor=actor, bodies=bodies), strict=True):
            ids[c.external_id] = new
        for c in part:
            if c.kind == "update_user":
                assert c.user is not None
                users.patch_user(s, actor=actor, user_id=ids[c.external_id], operations=_update_ops(c.user))
        for kind, active in (("reactivate_user", True), ("deactivate_user", False)):
            some = [ids[c.external_id] for c in part if c.kind == kind]
            if some:
                bulk.set_active(s, actor=actor, user_ids=some, active=active)

    _in_batches(engine, changes, "users", result, tick, write)


def _teams(
    engine: Engine,
    actor: Actor,
    changes: list[TeamChange],
    ids: dict[str, str],
    result: ApplyResult,
    tick: ApplyProgress,
) -> None:
    def write(s: Session, part: list[TeamChange]) -> None:
        creates = [c for c in part if c.kind == "create_team"]
        bodies = [{"displayName": c.display_name, "externalId": c.external_id} for c in creates]
        for c, new in zip(creates, bulk.create_teams(s, actor=actor, bodies=bodies), strict=True):
            ids[c.external_id] = new
        for c in part:
            if c.kind == "rename_team":
                teams.patch_team(
                    s,
                    actor=actor,
                    team_id=ids[c.external_id],
                    operations=[{"op": "replace", "path": "displayName", "value": c.display_name}],
                )
            elif c.kind != "create_team":
                teams.set_archived(
                    s, actor=actor, team_id=ids[c.external_id], archived=c.kind == "archive_team"
                )

    _in_batches(engine, changes, "teams", result, tick, write)


def _members(
    engine: Engine,
    actor: Actor,
    changes: list[MemberChange],
    user_ids: dict[str, str],
    team_ids: dict[str, str],
    result: ApplyResult,
    tick: ApplyProgress,
) -> None:
    """Member changes of one kind, `MEMBER_BATCH` memberships (across teams) per transaction.

    A team whose changes span two batches gets two versions and two audit events, as two
    `change_members` calls would give it.
    """
    if not changes:
        return
    kind = changes[0].kind
    op = bulk.add_memberships if kind == "add_members" else bulk.remove_memberships
    total = sum(len(c.user_external_ids) for c in changes)
    done = 0
    batch: list[tuple[str, str]] = []

    def flush() -> None:
        with session_scope(engine) as s:
            changed = op(s, actor=actor, pairs=batch)
        result.add(kind, sum(len(v) for v in changed.values()))
        tick("members", done, total)
        batch.clear()

    for c in changes:
        team_id = team_ids[c.team_external_id]
        for u in c.user_external_ids:
            done += 1
            uid = user_ids.get(u)
            if uid is not None:
                batch.append((team_id, uid))
                if len(batch) >= MEMBER_BATCH:
                    flush()
    if batch:
        flush()
    elif done:
        tick("members", done, total)
