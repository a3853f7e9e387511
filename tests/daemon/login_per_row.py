"""The per-row on-login write, the contract's oracle for `syncd.reconcile.login` (and the
baseline `bench/login_sync.py` times it against).

One service call per change, as the login wrote before it planned with the reconcile diff:
one query for the teams of the user's groups, then `teams.create_team` (or `set_archived`) per
missing or archived one, in external-id order; one `teams.change_members` per team the user
joins, then one per team it leaves whose group the lookup reports; then the user's teams read
back for the answer. Manual memberships are never removed (the service refuses it); teams
without an external id are not compared. A name another team holds gives
`"<name> (<external id>)"`. No retries: the contract runs alone.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from syncd.reconcile.apply import user_body
from syncd.reconcile.snapshot import SnapshotGroup, UserGroups
from syncd.service import teams as team_ops
from syncd.service import tokens
from syncd.service import users as user_ops
from syncd.service.context import Actor
from syncd.service.errors import Conflict
from syncd.store import session_scope
from syncd.store.models import Membership, Team


def sync_per_row(engine: Engine, directory: str, ug: UserGroups) -> dict[str, list[str]]:
    """Write the user's groups as the per-row path did; returns the external ids of the teams
    created, joined and left (each sorted), and of the user's teams afterwards ("teams")."""
    assert ug.user is not None
    actor = Actor("login", directory, "login")
    out: dict[str, list[str]] = {"created": [], "added": [], "removed": []}
    kept = sorted(ug.groups, key=lambda g: g.external_id)
    with session_scope(engine) as s:
        tokens.ensure_directory(s, name=directory, kind="graph")
        row = user_ops.find_user(s, actor=actor, external_id=ug.user.external_id)
        if row is None:
            row = user_ops.create_user(s, actor=actor, body=user_body(ug.user))
        exts = [g.external_id for g in kept]
        have = {
            t.external_id: t
            for t in s.execute(
                select(Team).where(Team.directory == directory, Team.external_id.in_(exts))  # type: ignore[union-attr]
            ).scalars()
        }
        wanted: dict[str, Team] = {}
        for g in kept:
            t = have.get(g.external_id)
            if t is None:
                t = _create_team(s, actor, g, out)
            elif t.archived:
                t = team_ops.set_archived(s, actor=actor, team_id=t.id, archived=False)
            if t is not None:
                wanted[t.id] = t
        q = (
            select(Team)
            .join(Membership, Membership.team_id == Team.id)
            .where(Membership.user_id == row.id, Team.directory == directory, Team.external_id.is_not(None))  # type: ignore[union-attr]
        )
        current = {t.id: t for t in s.execute(q).scalars()}
        for tid in sorted(wanted.keys() - current.keys()):
            if team_ops.change_members(s, actor=actor, team_id=tid, add=[row.id])[0]:
                out["added"].append(wanted[tid].external_id or "")
        for tid in sorted(current.keys() - wanted.keys()):
            ext = current[tid].external_id or ""
            if ug.reports(ext) and team_ops.change_members(s, actor=actor, team_id=tid, remove=[row.id])[1]:
                out["removed"].append(ext)
        s.flush()
        answer = (
            select(Team, Membership.source)
            .join(Membership, Membership.team_id == Team.id)
            .where(Membership.user_id == row.id)
            .order_by(Team.display_name_key)
        )
        out["teams"] = [t.external_id or "" for t, _ in s.execute(answer).tuples()]
    return {k: sorted(v) for k, v in out.items()}


def _create_team(s: Any, actor: Actor, g: SnapshotGroup, out: dict[str, list[str]]) -> Team | None:
    for name in (g.display_name, f"{g.display_name} ({g.external_id})"):
        try:
            with s.begin_nested():
                t = team_ops.create_team(
                    s, actor=actor, body={"displayName": name, "externalId": g.external_id}
                )
            out["created"].append(g.external_id)
            return t
        except Conflict:
            continue
    return None
