"""Read the StoreView of one directory: only the columns the diff compares, in three queries.

Rows are fetched through Core (no ORM entities; memberships in partitions of `ROWS`) and member ids are
mapped to external ids in Python, so the cost is one pass over the directory's users, teams
and memberships. Each external id string is held once and shared by `users` and the member
sets, so the view of 100k users and 1M memberships stays small.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from syncd.reconcile.view import StoredTeam, StoredUser, StoreView
from syncd.store.models import Membership, Team, User

USERS = User.__table__  # type: ignore[attr-defined]
TEAMS = Team.__table__  # type: ignore[attr-defined]
MEMBERSHIPS = Membership.__table__  # type: ignore[attr-defined]
#: membership rows fetched at a time (bounds the transient memory of the largest query)
ROWS = 20_000


def load_view(session: Session, directory: str) -> StoreView:
    view = StoreView()
    conn = session.connection()
    u = USERS.c
    q = select(
        u.id, u.external_id, u.user_name, u.active, u.display_name, u.given_name, u.family_name, u.data
    ).where(u.directory == directory, u.external_id.is_not(None))
    uid_to_ext: dict[str, str] = {}
    for uid, ext, name, active, disp, given, family, data in conn.execute(q).all():
        view.users[ext] = StoredUser(uid, ext, name, active, disp, given, family, _primary_email(data))
        uid_to_ext[uid] = ext
    t = TEAMS.c
    q2 = select(t.id, t.external_id, t.display_name, t.archived).where(
        t.directory == directory, t.external_id.is_not(None)
    )
    tid_to_ext: dict[str, str] = {}
    for tid, ext, name, archived in conn.execute(q2).all():
        view.teams[ext] = StoredTeam(tid, ext, name, archived)
        tid_to_ext[tid] = ext
    m = MEMBERSHIPS.c
    q3 = select(m.team_id, m.user_id, m.source).where(m.directory == directory)
    members, manual = view.members, view.manual
    t_get, u_get = tid_to_ext.get, uid_to_ext.get
    result = conn.execution_options(yield_per=ROWS).execute(q3)
    for part in result.partitions():
        for tid, uid, source in part:
            te, ue = t_get(tid), u_get(uid)
            if te is None or ue is None:
                continue
            target = manual if source == "manual" else members
            got = target.get(te)
            if got is None:
                target[te] = {ue}
            else:
                got.add(ue)
    return view


def _primary_email(data: dict[str, Any] | None) -> str | None:
    emails = (data or {}).get("emails") or []
    for e in emails:
        if isinstance(e, dict) and e.get("primary"):
            return e.get("value")
    return emails[0].get("value") if emails and isinstance(emails[0], dict) else None
