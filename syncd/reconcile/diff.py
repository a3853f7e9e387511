"""Pure diff: (normalised snapshot, store view) → Plan. No I/O.

Matching is by the IdP's immutable id only (`external_id`), never by name or email, so a
rename is an update and a returning user or team gets its old local id back.

Full snapshot: anything in the view but absent from the snapshot has left scope.
Delta snapshot: only what it names is compared; `removed_users` / `removed_groups` left.
Members are compared only for groups the snapshot carries (their member sets are complete).
"""

from __future__ import annotations

from typing import Literal

from syncd.reconcile.plan import MemberChange, Plan, TeamChange, UserChange
from syncd.reconcile.snapshot import Snapshot, SnapshotUser
from syncd.reconcile.view import StoredUser, StoreView

UserPolicy = Literal["deactivate", "keep"]
TeamPolicy = Literal["archive", "keep"]


def user_fields(snap: SnapshotUser, row: StoredUser) -> tuple[str, ...]:
    """Attributes that differ between the IdP's user and the stored one (active excluded)."""
    pairs = (
        ("userName", snap.user_name, row.user_name),
        ("displayName", snap.display_name, row.display_name),
        ("name.givenName", snap.given_name, row.given_name),
        ("name.familyName", snap.family_name, row.family_name),
        ("email", snap.email, row.email),
    )
    return tuple(name for name, a, b in pairs if (a or None) != (b or None))


def diff(
    snapshot: Snapshot,
    view: StoreView,
    *,
    users_left: UserPolicy = "deactivate",
    teams_left: TeamPolicy = "archive",
) -> Plan:
    plan = Plan(snapshot.directory, complete=snapshot.complete)
    _diff_users(snapshot, view, plan, users_left)
    _diff_teams(snapshot, view, plan, teams_left)
    _diff_members(snapshot, view, plan, teams_left)
    return plan


def _diff_users(snapshot: Snapshot, view: StoreView, plan: Plan, policy: UserPolicy) -> None:
    # userNames are unique in a directory and a stored user keeps its name while inactive, so a
    # create or rename onto a name another stored user holds would fail the whole run, every run
    # (a user deleted and recreated in the IdP under the same name): it is left out, with a note.
    # Names are taken as stored before this plan, since apply creates users before renaming any.
    held = {row.user_name.casefold(): ext for ext, row in view.users.items()}

    def blocked(ext: str, su: SnapshotUser) -> bool:
        other = held.get(su.user_name.casefold(), ext)
        if other != ext:
            plan.notes.append(f"user {ext} not written: userName {su.user_name!r} is held by user {other}")
        return other != ext

    for ext, su in sorted(snapshot.users.items()):
        row = view.users.get(ext)
        if row is None:
            if not blocked(ext, su):
                plan.users.append(UserChange("create_user", ext, None, su))
            continue
        fields = user_fields(su, row)
        if fields and not blocked(ext, su):
            plan.users.append(UserChange("update_user", ext, row.id, su, fields))
        if su.active and not row.active:
            plan.users.append(UserChange("reactivate_user", ext, row.id, su))
        elif not su.active and row.active:
            plan.users.append(UserChange("deactivate_user", ext, row.id, su))
    if policy == "keep":
        return
    gone = snapshot.removed_users if snapshot.mode == "delta" else view.users.keys() - snapshot.users.keys()
    for ext in sorted(gone):
        row = view.users.get(ext)
        if row is not None and row.active:
            plan.users.append(UserChange("deactivate_user", ext, row.id))


def _diff_teams(snapshot: Snapshot, view: StoreView, plan: Plan, policy: TeamPolicy) -> None:
    names = _unique_names(snapshot, view)
    for ext in sorted(snapshot.groups):
        row = view.teams.get(ext)
        name = names[ext]
        if row is None:
            plan.teams.append(TeamChange("create_team", ext, name))
            continue
        if row.archived:
            plan.teams.append(TeamChange("restore_team", ext, name, row.id))
        if row.display_name != name:
            plan.teams.append(TeamChange("rename_team", ext, name, row.id))
    if policy == "keep":
        return
    gone = snapshot.removed_groups if snapshot.mode == "delta" else view.teams.keys() - snapshot.groups.keys()
    for ext in sorted(gone):
        row = view.teams.get(ext)
        if row is not None and not row.archived:
            plan.teams.append(TeamChange("archive_team", ext, row.display_name, row.id))


def _unique_names(snapshot: Snapshot, view: StoreView) -> dict[str, str]:
    """Team names per group; IdPs allow duplicate group names, a directory's teams do not, so a
    duplicate gets its external id appended (deterministically, the same in every run).

    Stored teams the snapshot does not carry keep their names (a team that left is archived,
    not deleted), so in both modes their names count as taken."""
    by_name: dict[str, list[str]] = {}
    for ext, g in snapshot.groups.items():
        by_name.setdefault(g.display_name.casefold(), []).append(ext)
    for ext, t in view.teams.items():
        if ext not in snapshot.groups:
            by_name.setdefault(t.display_name.casefold(), []).append(ext)
    out = {}
    for ext, g in snapshot.groups.items():
        clash = len(by_name[g.display_name.casefold()]) > 1
        out[ext] = f"{g.display_name} ({ext})" if clash else g.display_name
    return out


def _diff_members(snapshot: Snapshot, view: StoreView, plan: Plan, policy: TeamPolicy) -> None:
    known = view.users.keys() | {c.external_id for c in plan.users if c.kind == "create_user"}
    for ext, sg in sorted(snapshot.groups.items()):
        row = view.teams.get(ext)
        want = {u for u in sg.member_ids if u in known}
        have = view.members.get(ext, set())
        manual = view.manual.get(ext, set())
        add = sorted(want - have - manual)
        remove = sorted(have - want)
        store_id = row.id if row else None
        if add:
            plan.members.append(MemberChange("add_members", ext, tuple(add), store_id))
        if remove:
            plan.members.append(MemberChange("remove_members", ext, tuple(remove), store_id))
    if policy == "keep":
        return
    gone = view.teams.keys() - snapshot.groups.keys() if snapshot.mode == "full" else snapshot.removed_groups
    for ext in sorted(gone):
        have = view.members.get(ext, set())
        row = view.teams.get(ext)
        if have and row is not None:
            plan.members.append(MemberChange("remove_members", ext, tuple(sorted(have)), row.id))
