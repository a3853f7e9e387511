"""Desired state vs what the target holds → a TargetPlan. Pure: no I/O.

Matching, in order, each remote object claimed at most once:
  users: id map → externalId → userName → email (case-insensitive);
  teams: id map → externalId → displayName.
What matched without a map row is adopted (a map row is written, nothing is created).
Only mapped (managed) remote objects are ever deactivated or deleted, and only desired users
are ever removed from a team: users and teams that IdP push or a person made on the target
are left alone, and a user that left keeps its teams (`on_user_left` handles it).
A mapped object missing from a complete read is created again and remapped; an incomplete
read drops every removal (see `safety`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import TypeVar

from syncd.targets.desired import Desired, DesiredUser
from syncd.targets.plan import TargetPlan
from syncd.targets.remote import RemoteState, RemoteUser
from syncd.targets.state import IdMap

T = TypeVar("T")


def _unique_index(items: Iterable[T], key: Callable[[T], Iterable[str]]) -> dict[str, T]:
    """key → item for keys held by exactly one item."""
    seen: dict[str, T] = {}
    dup: set[str] = set()
    for it in items:
        for k in set(key(it)):
            if k in seen:
                dup.add(k)
            seen[k] = it
    return {k: v for k, v in seen.items() if k not in dup}


def user_differs(d: DesiredUser, r: RemoteUser, recorded_digest: str | None) -> bool:
    """True when the target should get a PUT: an attribute it returned differs, or what was last
    acknowledged is not what is desired now."""
    if recorded_digest is not None and recorded_digest != d.digest():
        return True
    if r.user_name is not None and r.user_name.casefold() != d.user_name.casefold():
        return True
    if d.email and r.emails and d.email.casefold() not in r.emails:
        return True
    if r.external_id is not None and r.external_id != d.external_id:
        return True
    if r.given_name is not None and r.given_name != (d.given_name or r.given_name):
        return True
    return r.family_name is not None and r.family_name != (d.family_name or r.family_name)


def diff(
    desired: Desired,
    remote: RemoteState,
    idmap: IdMap,
    *,
    on_user_left: str = "deactivate",
    on_team_left: str = "delete",
    pending_names: dict[str, tuple[str, str | None]] | None = None,
) -> TargetPlan:
    """`pending_names[local id]` = (userName, email) of users whose create may have happened
    (a pending map row) and that are no longer desired: found on the target, they still leave."""
    plan = TargetPlan(complete=remote.complete, notes=list(desired.notes))
    claimed_users: set[str] = {
        m.remote_id for (k, _), m in idmap.items() if k == "user" and m.remote_id in remote.users
    }
    claimed_groups: set[str] = {
        m.remote_id for (k, _), m in idmap.items() if k == "team" and m.remote_id in remote.groups
    }
    free_users = [r for r in remote.users.values() if r.id not in claimed_users]
    by_ext = _unique_index(free_users, lambda r: [r.external_id] if r.external_id else [])
    by_name = _unique_index(free_users, lambda r: [r.user_name.casefold()] if r.user_name else [])
    by_email = _unique_index(free_users, lambda r: r.emails)
    ext_count = Counter(u.external_id for u in desired.users.values())

    user_remote: dict[str, str] = {}  # local user id -> remote id (matched)
    for lid, d in sorted(desired.users.items()):
        m = idmap.get(("user", lid))
        r: RemoteUser | None = None
        if m is not None and m.remote_id in remote.users:
            r = remote.users[m.remote_id]
        else:
            for cand in (
                by_ext.get(d.external_id) if ext_count[d.external_id] == 1 else None,
                by_name.get(d.user_name.casefold()),
                by_email.get(d.email.casefold()) if d.email else None,
            ):
                if cand is not None and cand.id not in claimed_users:
                    r = cand
                    break
            if r is not None:
                claimed_users.add(r.id)
                plan.adopt.append(("user", lid, r.id))
        if r is None:
            plan.create_users.append(d)
            continue
        user_remote[lid] = r.id
        recorded = m.digest if m is not None and m.remote_id == r.id else None
        if user_differs(d, r, recorded):
            plan.update_users.append((d, r.id))
        was_inactive = m is not None and m.remote_id == r.id and m.active is False
        if was_inactive or r.active is False:
            plan.activate_users.append((lid, r.id))

    for (kind, lid), m in sorted(idmap.items()):
        if kind != "user" or lid in desired.users:
            continue
        if m.remote_id is None and remote.complete and lid in (pending_names or {}):
            name, email = (pending_names or {})[lid]
            got = by_name.get(name.casefold()) or (by_email.get(email.casefold()) if email else None)
            if got is not None and got.id not in claimed_users:  # created before a crash: it leaves
                claimed_users.add(got.id)
                plan.adopt.append(("user", lid, got.id))
                plan.leave_users.append((lid, got.id))
            else:
                plan.forget.append(("user", lid))
        elif m.remote_id is None and not remote.complete:
            continue  # it may be on the part of the target not read: keep the pending row
        elif m.remote_id is None or (remote.complete and m.remote_id not in remote.users):
            plan.forget.append(("user", lid))  # nothing there to deactivate or delete
        elif on_user_left == "delete" or not (m.left and m.active is False):
            plan.leave_users.append((lid, m.remote_id))

    # removals from a team only for users that stay desired: one that left is handled by
    # on_user_left alone (deactivated users keep their teams; a deleted one loses them anyway)
    managed_remote_users = set(user_remote.values())
    free_groups = [g for g in remote.groups.values() if g.id not in claimed_groups]
    g_by_ext = _unique_index(free_groups, lambda g: [g.external_id] if g.external_id else [])
    g_by_name = _unique_index(free_groups, lambda g: [g.display_name.casefold()] if g.display_name else [])
    for tid, t in sorted(desired.teams.items()):
        m = idmap.get(("team", tid))
        g = remote.groups.get(m.remote_id) if m is not None and m.remote_id else None
        if g is None:
            for cand in (g_by_ext.get(t.external_id), g_by_name.get(t.display_name.casefold())):
                if cand is not None and cand.id not in claimed_groups:
                    g = cand
                    break
            if g is not None:
                claimed_groups.add(g.id)
                plan.adopt.append(("team", tid, g.id))
        if g is None:
            plan.create_teams.append(t)
            if t.members:
                plan.add_members[tid] = sorted(t.members)
            continue
        recorded = m.digest if m is not None and m.remote_id == g.id else None
        if g.display_name != t.display_name or (recorded is not None and recorded != t.digest()):
            plan.rename_teams.append((t, g.id))
        want = {user_remote.get(u) for u in t.members}
        adds = sorted(u for u in t.members if user_remote.get(u) not in g.members)
        if adds:
            plan.add_members[tid] = adds
        removes = sorted((g.members & managed_remote_users) - want)
        if removes and remote.complete:
            plan.remove_members[tid] = removes

    for (kind, tid), m in sorted(idmap.items()):
        if kind != "team" or tid in desired.teams:
            continue
        if m.remote_id is None or (remote.complete and m.remote_id not in remote.groups):
            plan.forget.append(("team", tid))
        elif on_team_left == "delete":
            plan.delete_teams.append((tid, m.remote_id))
        else:
            plan.forget.append(("team", tid))
    if not remote.complete:
        plan = plan.without_removals()
        plan.notes.append(f"the target's read was incomplete ({remote.error}): nothing removed")
    return plan
