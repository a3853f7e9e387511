"""Read the StoreView of one directory: only the columns the diff compares, in three queries."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from syncd.reconcile.view import StoredTeam, StoredUser, StoreView
from syncd.store.models import Membership, Team, User


def load_view(session: Session, directory: str) -> StoreView:
    view = StoreView()
    q = select(
        User.id,
        User.external_id,
        User.user_name,
        User.active,
        User.display_name,
        User.given_name,
        User.family_name,
        User.data,
    ).where(User.directory == directory, User.external_id.is_not(None))  # type: ignore[union-attr]
    uid_to_ext: dict[str, str] = {}
    for uid, ext, name, active, disp, given, family, data in session.execute(q):
        view.users[ext] = StoredUser(uid, ext, name, active, disp, given, family, _primary_email(data))
        uid_to_ext[uid] = ext
    q2 = select(Team.id, Team.external_id, Team.display_name, Team.archived).where(
        Team.directory == directory,
        Team.external_id.is_not(None),  # type: ignore[union-attr]
    )
    tid_to_ext: dict[str, str] = {}
    for tid, ext, name, archived in session.execute(q2):
        view.teams[ext] = StoredTeam(tid, ext, name, archived)
        tid_to_ext[tid] = ext
    q3 = select(Membership.team_id, Membership.user_id, Membership.source).where(
        Membership.directory == directory
    )
    for tid, uid, source in session.execute(q3):
        t, u = tid_to_ext.get(tid), uid_to_ext.get(uid)
        if t is None or u is None:
            continue
        (view.manual if source == "manual" else view.members).setdefault(t, set()).add(u)
    return view


def _primary_email(data: dict | None) -> str | None:
    emails = (data or {}).get("emails") or []
    for e in emails:
        if isinstance(e, dict) and e.get("primary"):
            return e.get("value")
    return emails[0].get("value") if emails and isinstance(emails[0], dict) else None
