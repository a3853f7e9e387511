"""Pure diff: (normalised snapshot, store view) → Plan. No I/O.

Matching is by the IdP's immutable id only (`external_id`), never by name or email, so a
rename is an update and a returning user or team gets its old local id back.

Full snapshot: anything in the view but absent from the snapshot has left scope.
Delta snapshot: only what it names is compared; `removed_users` / `removed_groups` left.
Members are compared only for groups the snapshot carries (their member sets are complete).
Team and user names follow `syncd.reconcile.names`: the same in full and delta reads, unique
after the whole plan is applied, whatever names change hands within it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from syncd.reconcile.names import base_name, settle_user_names, team_names
from syncd.reconcile.plan import MemberChange, Plan, TeamChange, UserChange
from syncd.reconcile.snapshot import Snapshot, SnapshotUser
from syncd.reconcile.view import StoredUser, StoreView
from syncd.service.resource import fold

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
    # userNames are unique in a directory and a stored user keeps its name while inactive. A
    # create or rename onto a name that stays held after this run (a user deleted and recreated
    # in the IdP under the same name, while the store keeps the old row) would fail the whole
    # run, every run: it is left out with a note, and the user's other attributes still apply.
    # Names that change hands within the run (swaps, chains, cycles) are written by apply.
    rows = view.users
    # a user exactly as stored changes nothing, its name included: only the others can move onto
    # a name (or be refused one), so the names are settled among them alone, and not at all
    # when there are none (a no-op read)
    touched = [ext for ext, su in snapshot.users.items() if not _same_user(su, rows.get(ext))]
    if not touched:
        _users_left(snapshot, view, plan, policy)
        return
    stored = {ext: row.user_name for ext, row in rows.items()}
    users = snapshot.users
    wanted = {ext: users[ext].user_name for ext in touched}
    refused = settle_user_names(stored, wanted, view.unmanaged_user_names)
    holder: dict[str, str] = {}

    def note(ext: str, su: SnapshotUser) -> None:
        if not holder:
            holder.update((k, "without externalId") for k in view.unmanaged_user_names)
            holder.update((fold(name), ext) for ext, name in stored.items())
        other = holder.get(fold(su.user_name))
        by = f"held by user {other}" if other not in (None, ext) else "wanted by another user too"
        plan.notes.append(f"user {ext} not written: userName {su.user_name!r} is {by}")

    for ext in sorted(touched):
        su = snapshot.users[ext]
        row = rows.get(ext)
        if row is None:
            if ext in refused:
                note(ext, su)
            else:
                plan.users.append(UserChange("create_user", ext, None, su))
            continue
        if ext in refused:
            note(ext, su)
            su = replace(su, user_name=row.user_name)
        fields = user_fields(su, row)
        if fields:
            plan.users.append(UserChange("update_user", ext, row.id, su, fields))
        if su.active and not row.active:
            plan.users.append(UserChange("reactivate_user", ext, row.id, su))
        elif not su.active and row.active:
            plan.users.append(UserChange("deactivate_user", ext, row.id, su))
    _users_left(snapshot, view, plan, policy)


def _users_left(snapshot: Snapshot, view: StoreView, plan: Plan, policy: UserPolicy) -> None:
    """Deactivations of the stored users that left (unless `policy` keeps them)."""
    if policy == "keep":
        return
    gone = snapshot.removed_users if snapshot.mode == "delta" else view.users.keys() - snapshot.users.keys()
    for ext in sorted(gone):
        row = view.users.get(ext)
        if row is not None and row.active:
            plan.users.append(UserChange("deactivate_user", ext, row.id))


def _same_user(su: SnapshotUser, row: StoredUser | None) -> bool:
    """Whether the stored user is exactly what the IdP says (then the diff has nothing to do for
    it, whatever `user_fields` would compare): the common case, checked without building pairs."""
    return (
        row is not None
        and su.active == row.active
        and su.user_name == row.user_name
        and su.display_name == row.display_name
        and su.given_name == row.given_name
        and su.family_name == row.family_name
        and su.email == row.email
    )


def _diff_teams(snapshot: Snapshot, view: StoreView, plan: Plan, policy: TeamPolicy) -> None:
    live, held = _team_claims(snapshot, view)
    names = team_names(live, held)
    for ext in sorted(live):
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


def _team_claims(snapshot: Snapshot, view: StoreView) -> tuple[dict[str, str], list[str]]:
    """(live teams: external id → base name, names held by teams that left); see `names`.

    Live: the snapshot's groups, and when the snapshot cannot tell what left (a delta, or a read
    cut short) every stored team that is neither archived nor reported removed, under its
    stored name: so a delta that carries one of two same-named groups names both as a full read
    would. Held: the stored names of all other stored teams (archived, or archived by this plan,
    or kept by the "keep" policy), and the names of teams without an external id."""
    live = {ext: base_name(g.display_name, ext) for ext, g in snapshot.groups.items()}
    if snapshot.mode == "delta" or not snapshot.complete:
        for ext, t in view.teams.items():
            if ext not in live and not t.archived and ext not in snapshot.removed_groups:
                live[ext] = base_name(t.display_name, ext)
    held = [t.display_name for ext, t in view.teams.items() if ext not in live]
    return live, [*held, *view.unmanaged_team_names]


def _diff_members(snapshot: Snapshot, view: StoreView, plan: Plan, policy: TeamPolicy) -> None:
    known = view.users.keys() | {c.external_id for c in plan.users if c.kind == "create_user"}
    empty: frozenset[str] = frozenset()
    for ext, sg in sorted(snapshot.groups.items()):
        ids = sg.member_ids
        have = view.members.get(ext, empty)
        if have is ids:  # the view found them equal (all stored users): nothing to add or remove
            continue
        want = ids if ids <= known else ids & known
        if have == want:  # the common case: nothing to add (manual ones aside) or remove
            continue
        manual = view.manual.get(ext, empty)
        add = sorted(want - have - manual)
        remove = sorted(have - want)
        row = view.teams.get(ext)
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
