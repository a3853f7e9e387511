"""Incremental delivery: feed changes → the objects they touch → the fewest SCIM writes. Pure.

A page of changes is reduced to the users and teams it touched and, per team, the users whose
membership changed (`Touched`). The plan then compares the desired state of exactly those
objects with what the id map says the target acknowledged:
- a user: created if unmapped; PUT when its digest changed (PATCH ignores emails/userName on
  LiteLLM-style targets); `active=true` when it had been deactivated; `on_user_left` when it is
  no longer desired (deactivated, deleted, out of scope);
- a team: created with its members if unmapped; displayName PATCHed when renamed; member
  changes of one team go out as one add and one remove PATCH (chunked by `apply`); a team no
  longer desired (archived, deleted, out of scope) gets `on_team_left`.
Several changes of one object in a page cost one write; a change that alters nothing the
target holds (an attribute it does not carry) costs none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from syncd.config.models import ScimTarget
from syncd.targets.desired import Desired
from syncd.targets.plan import TargetPlan
from syncd.targets.state import IdMap

_TEAM_GONE = ("team.deleted", "team.archived", "team.unarchived")


@dataclass
class Touched:
    users: set[str] = field(default_factory=set)
    teams: set[str] = field(default_factory=set)
    members: dict[str, set[str]] = field(default_factory=dict)  # team id -> user ids
    teams_emptied: set[str] = field(default_factory=set)  # deleted/archived: members unknown here


def touched(changes: Iterable[Any]) -> Touched:
    """What a page of feed changes touched (`FeedChange`-like objects)."""
    t = Touched()
    for c in changes:
        if c.resource_type == "user":
            t.users.add(c.resource_id)
            for tid in (c.data or {}).get("team_ids") or []:  # user.deleted: the teams it left
                t.teams.add(tid)
                t.members.setdefault(tid, set()).add(c.resource_id)
        elif c.resource_type == "team":
            t.teams.add(c.resource_id)
            if c.kind in _TEAM_GONE:
                t.teams_emptied.add(c.resource_id)
            for m in (c.data or {}).get("members") or []:
                uid = m.get("id") if isinstance(m, dict) else m
                if isinstance(uid, str):
                    t.users.add(uid)
                    t.members.setdefault(c.resource_id, set()).add(uid)
    return t


def plan_changes(desired: Desired, idmap: IdMap, touched: Touched, settings: ScimTarget) -> TargetPlan:
    plan = TargetPlan(notes=list(desired.notes))
    for uid in sorted(touched.users):
        d, m = desired.users.get(uid), idmap.get(("user", uid))
        if d is not None:
            if m is None or m.remote_id is None:
                plan.create_users.append(d)
                continue
            if m.digest != d.digest():
                plan.update_users.append((d, m.remote_id))
            if m.active is False or m.left:
                plan.activate_users.append((uid, m.remote_id))
        elif (
            m is not None
            and m.remote_id is not None
            and (settings.on_user_left == "delete" or not (m.left and m.active is False))
        ):
            plan.leave_users.append((uid, m.remote_id))
    for tid in sorted(touched.teams):
        t, m = desired.teams.get(tid), idmap.get(("team", tid))
        if t is not None:
            if m is None or m.remote_id is None:
                plan.create_teams.append(t)
                if t.members:
                    plan.add_members[tid] = sorted(t.members)
                continue
            if m.digest != t.digest():
                plan.rename_teams.append((t, m.remote_id))
            adds, removes = [], []
            for uid in sorted(touched.members.get(tid, ())):
                mu = idmap.get(("user", uid))
                if uid in t.members:
                    adds.append(uid)
                elif uid in desired.users and mu is not None and mu.remote_id is not None:
                    removes.append(mu.remote_id)  # a user that left is on_user_left's alone
            if adds:
                plan.add_members[tid] = adds
            if removes:
                plan.remove_members[tid] = removes
        elif m is not None and m.remote_id is not None:
            if settings.on_team_left == "delete":
                plan.delete_teams.append((tid, m.remote_id))
            else:
                plan.forget.append(("team", tid))
    return plan
