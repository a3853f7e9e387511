"""Read the StoreView of one directory: only the columns the diff compares, in three queries.

Rows are fetched through Core (no ORM entities; memberships in parts of `ROWS`) and member ids are
mapped to external ids in Python, so the cost is one pass over the directory's users, teams
and memberships. Each external id string is held once and shared by `users` and the member
sets, so the view of 100k users and 1M memberships stays small.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy import Connection, select
from sqlmodel import Session

from syncd.reconcile.view import StoredTeam, StoredUser, StoreView
from syncd.store.models import Membership, Team, User, UserEmail

USERS = User.__table__  # type: ignore[attr-defined]
EMAILS = UserEmail.__table__  # type: ignore[attr-defined]
TEAMS = Team.__table__  # type: ignore[attr-defined]
MEMBERSHIPS = Membership.__table__  # type: ignore[attr-defined]
#: membership rows fetched at a time (bounds the transient memory of the largest query)
ROWS = 20_000


def load_view(session: Session, directory: str) -> StoreView:
    view = StoreView()
    conn = session.connection()
    u, e = USERS.c, EMAILS.c
    # the primary email, else the first, from the email rows the service keeps equal to
    # `data["emails"]`: an index lookup per user instead of parsing its JSON
    email = (
        select(e.value).where(e.user_id == u.id).order_by(e.primary.desc(), e.id).limit(1).scalar_subquery()
    )
    q = select(
        u.id, u.external_id, u.user_name, u.active, u.display_name, u.given_name, u.family_name, email
    ).where(u.directory == directory, u.external_id.is_not(None))
    uid_to_ext: dict[str, str] = {}
    for uid, ext, name, active, disp, given, family, mail in conn.execute(q).all():
        view.users[ext] = StoredUser(uid, ext, name, active, disp, given, family, mail)
        uid_to_ext[uid] = ext
    t = TEAMS.c
    q2 = select(t.id, t.external_id, t.display_name, t.archived).where(
        t.directory == directory, t.external_id.is_not(None)
    )
    tid_to_ext: dict[str, str] = {}
    for tid, ext, name, archived in conn.execute(q2).all():
        view.teams[ext] = StoredTeam(tid, ext, name, archived)
        tid_to_ext[tid] = ext
    for model, held in ((USERS, view.unmanaged_user_names), (TEAMS, view.unmanaged_team_names)):
        key = model.c.user_name_key if model is USERS else model.c.display_name_key
        q3 = select(key).where(model.c.directory == directory, model.c.external_id.is_(None))
        held.update(conn.execute(q3).scalars())
    members, manual = view.members, view.manual
    t_get, u_get = tid_to_ext.get, uid_to_ext.get
    for part in _membership_rows(conn, directory):
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


def _membership_rows(conn: Connection, directory: str) -> Iterator[Sequence[tuple[str, str, str]]]:
    """(team id, user id, source) of the directory's memberships, `ROWS` at a time.

    Straight from the driver's cursor (a million rows: building SQLAlchemy rows would cost
    more than reading them): SQLite's steps through the result, PostgreSQL's is a named
    (server-side) cursor. Other drivers stream through SQLAlchemy.
    """
    sql = "SELECT team_id, user_id, source FROM memberships WHERE directory = "
    raw = conn.connection.dbapi_connection
    if conn.dialect.name in ("sqlite", "postgresql") and raw is not None:
        sqlite = conn.dialect.name == "sqlite"
        cur = raw.cursor() if sqlite else raw.cursor(name="syncd_load_view")  # type: ignore[call-arg]
        try:
            cur.execute(sql + ("?" if sqlite else "%s"), (directory,))
            while part := cur.fetchmany(ROWS):
                yield part
        finally:
            cur.close()
        return
    m = MEMBERSHIPS.c
    q = select(m.team_id, m.user_id, m.source).where(m.directory == directory)
    yield from conn.execution_options(yield_per=ROWS).execute(q).tuples().partitions()
