"""Read the StoreView of one directory: only the columns the diff compares.

Users and teams come straight off the driver's cursor (no SQLAlchemy rows). Memberships, a
million rows at the L size, are read one row per team: the team's user ids joined into one
string by the database (`group_concat` / `string_agg`) and split in Python, so no per-membership
row is built; a team whose joined ids do not split back into its row count (an id holding
the separator) is read again row by row. Member ids are mapped to external ids through the
users read first, so each external id string is held once and shared by `users` and the
member sets.

Given the groups a snapshot expects (`expect`), a team whose joined ids are exactly the store
ids of its group's members, in code point order, is not split at all: its entry in `members`
is the group's own `member_ids` (equal in value to what the split would give, and the same
object, which the diff compares first). The comparison is of the whole strings, no hash: the
expected ids hold no separator and number as many as the team's rows, so equal strings mean
equal member lists. Any difference (a member added, removed or unknown, another order) only
means the team is split and mapped as without `expect`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from sys import intern
from typing import Any

from sqlalchemy import Connection, func, select
from sqlmodel import Session

from syncd.reconcile.snapshot import SnapshotGroup
from syncd.reconcile.view import StoredTeam, StoredUser, StoreView
from syncd.store.models import Membership, Team, User, UserEmail

USERS = User.__table__  # type: ignore[attr-defined]
EMAILS = UserEmail.__table__  # type: ignore[attr-defined]
TEAMS = Team.__table__  # type: ignore[attr-defined]
MEMBERSHIPS = Membership.__table__  # type: ignore[attr-defined]
#: rows fetched at a time (bounds the transient memory of the largest queries)
ROWS = 20_000
#: joins a team's user ids; store ids never hold it (and a team whose ids split wrong is re-read)
SEP = ","
#: PostgreSQL's work_mem for the per-team grouping (its hash table holds every joined id)
HASH_WORK_MEM = "128MB"


def load_view(
    session: Session, directory: str, *, expect: Mapping[str, SnapshotGroup] | None = None
) -> StoreView:
    """The directory's users, teams and memberships that carry an external id (see `StoreView`).

    `expect`: the snapshot's groups by external id; the view is the same with or without it,
    but a team whose members are exactly its group's holds the group's `member_ids` object
    (see the module docstring)."""
    view = StoreView()
    conn = session.connection()
    u, e = USERS.c, EMAILS.c
    # the primary email, else the first, from the email rows the service keeps equal to
    # `data["emails"]`: an index lookup per user instead of parsing its JSON. Two lookups in id
    # order (the user_id index's own order: no sort per user) rather than one by (primary, id).
    email = func.coalesce(
        select(e.value).where(e.user_id == u.id, e.primary).order_by(e.id).limit(1).scalar_subquery(),
        select(e.value).where(e.user_id == u.id).order_by(e.id).limit(1).scalar_subquery(),
    )
    # SQLite reads a directory that holds most of the users in one pass over the table, in row
    # order (`directory || ''` is not indexed), rather than a row lookup per entry of the
    # directory index, whose order (by id) is random in the table: ~0.5x the time at 100k
    in_dir = u.directory.concat("") if _most_users(conn, directory) else u.directory
    q = select(
        u.id, u.external_id, u.user_name, u.active, u.display_name, u.given_name, u.family_name, email
    ).where(in_dir == directory, u.external_id.is_not(None))
    uid_to_ext: dict[str, str] = {}
    users = view.users
    for part in _rows(conn, q):
        for uid, ext_, name, active, disp, given, family, mail in part:
            ext = intern(ext_)  # as the connectors do theirs: compares by identity
            users[ext] = StoredUser(uid, ext, name, bool(active), disp, given, family, mail)
            uid_to_ext[uid] = ext
    t = TEAMS.c
    q2 = select(t.id, t.external_id, t.display_name, t.archived).where(
        t.directory == directory, t.external_id.is_not(None)
    )
    tid_to_ext: dict[str, str] = {}
    for part in _rows(conn, q2):
        for tid, ext, name, archived in part:
            view.teams[ext] = StoredTeam(tid, ext, name, bool(archived))
            tid_to_ext[tid] = ext
    for model, held in ((USERS, view.unmanaged_user_names), (TEAMS, view.unmanaged_team_names)):
        key = model.c.user_name_key if model is USERS else model.c.display_name_key
        q3 = select(key).where(model.c.directory == directory, model.c.external_id.is_(None))
        held.update(conn.execute(q3).scalars())
    _load_members(conn, directory, view, tid_to_ext, uid_to_ext, expect or {})
    return view


def _load_members(
    conn: Connection,
    directory: str,
    view: StoreView,
    tid_to_ext: dict[str, str],
    uid_to_ext: dict[str, str],
    expect: Mapping[str, SnapshotGroup],
) -> None:
    if not _raw_ok(conn):
        _add_rows(view.members, _member_rows(conn, directory, manual=False), tid_to_ext, uid_to_ext)
        _add_rows(view.manual, _member_rows(conn, directory, manual=True), tid_to_ext, uid_to_ext)
        return
    u_get, g_get = uid_to_ext.get, expect.get
    # external id -> store id, for the ids that cannot be confused with the separator
    ext_to_uid = {e: u for u, e in uid_to_ext.items() if SEP not in u} if expect else {}
    again: list[str] = []
    for part in _joined_members(conn, directory):
        for tid, n, joined in part:
            te = tid_to_ext.get(tid)
            if te is None:
                continue
            g = g_get(te)
            if g is not None and len(g.member_ids) == n and joined == _joined_ids(g.member_ids, ext_to_uid):
                view.members[te] = g.member_ids  # type: ignore[assignment]  # equal, not mutated
                continue
            ids = joined.split(SEP)
            if len(ids) != n:
                again.append(tid)
                continue
            got = set(map(u_get, ids))
            got.discard(None)  # type: ignore[arg-type]  # a member without an external id
            if got:
                view.members[te] = got  # type: ignore[assignment]
    if again:
        _add_rows(
            view.members, _member_rows(conn, directory, manual=False, teams=again), tid_to_ext, uid_to_ext
        )
    _add_rows(view.manual, _member_rows(conn, directory, manual=True), tid_to_ext, uid_to_ext)


def _most_users(conn: Connection, directory: str) -> bool:
    """Whether the store is SQLite and `directory` holds at least half of its users (two counts
    over indexes, ~5 ms at 100k users)."""
    if conn.dialect.name != "sqlite":
        return False
    u = USERS.c
    mine = conn.execute(select(func.count()).where(u.directory == directory)).scalar_one()
    return 2 * mine >= conn.execute(select(func.count()).select_from(USERS)).scalar_one() > 0


def _joined_ids(ext_ids: frozenset[str], ext_to_uid: dict[str, str]) -> str | None:
    """The store ids of `ext_ids` in code point order, joined by `SEP`; None when one is not
    in `ext_to_uid`."""
    try:
        return SEP.join(sorted([ext_to_uid[e] for e in ext_ids]))
    except KeyError:
        return None


def _add_rows(
    target: dict[str, set[str]],
    parts: Iterable[Sequence[tuple[str, str]]],
    tid_to_ext: dict[str, str],
    uid_to_ext: dict[str, str],
) -> None:
    t_get, u_get = tid_to_ext.get, uid_to_ext.get
    for part in parts:
        for tid, uid in part:
            te, ue = t_get(tid), u_get(uid)
            if te is None or ue is None:
                continue
            got = target.get(te)
            if got is None:
                target[te] = {ue}
            else:
                got.add(ue)


def _joined_members(conn: Connection, directory: str) -> Iterator[Sequence[tuple[str, int, str]]]:
    """(team id, member count, the user ids joined by `SEP`) per team of the directory, for
    memberships a sync may remove (source other than manual). The ids are in code point order:
    PostgreSQL sorts them by byte ("C"; UTF-8 bytes sort as code points); SQLite groups in its
    (team_id, user_id) key order with the binary collation, which is the same order."""
    if conn.dialect.name == "sqlite":
        agg, p = "group_concat(user_id, ?)", "?"
    else:
        agg, p = 'string_agg(user_id, %s ORDER BY user_id COLLATE "C")', "%s"
    sql = (
        f"SELECT team_id, count(*), {agg} FROM memberships "
        f"WHERE directory = {p} AND source <> 'manual' GROUP BY team_id"
    )
    if conn.dialect.name != "postgresql":
        yield from _raw(conn, sql, (SEP, directory))
        return
    # PostgreSQL: grouped in one hash table of the teams. Sorting every membership instead spills
    # to disk at the default work_mem (~3x the time at 1.3M rows), and the planner picks that sort
    # on the statistics a bulk load leaves stale. Both settings are put back after the query.
    from psycopg.pq import TransactionStatus

    raw: Any = conn.connection.dbapi_connection
    get = "SELECT current_setting('work_mem'), current_setting('enable_sort')"
    work_mem, enable_sort = raw.execute(get).fetchone()
    put = "SELECT set_config('work_mem', %s, true), set_config('enable_sort', %s, true)"
    raw.execute(put, (HASH_WORK_MEM, "off"))
    try:
        yield from _raw(conn, sql, (SEP, directory))
    finally:
        if raw.info.transaction_status == TransactionStatus.INTRANS:  # else: rolled back with it
            raw.execute(put, (work_mem, enable_sort))


def _member_rows(
    conn: Connection, directory: str, *, manual: bool, teams: Sequence[str] = ()
) -> Iterator[Sequence[tuple[str, str]]]:
    """(team id, user id) of the directory's memberships whose source is manual (`manual`) or
    is not; of `teams` only, when given."""
    m = MEMBERSHIPS.c
    q = select(m.team_id, m.user_id).where(
        m.directory == directory, m.source == "manual" if manual else m.source != "manual"
    )
    if teams:  # a rare re-read (see `_load_members`): through SQLAlchemy, which expands the list
        q = q.where(m.team_id.in_(teams))
        return conn.execution_options(yield_per=ROWS).execute(q).tuples().partitions()
    return _rows(conn, q)


def _raw_ok(conn: Connection) -> bool:
    return conn.dialect.name in ("sqlite", "postgresql") and conn.connection.dbapi_connection is not None


def _rows(conn: Connection, q: Any) -> Iterator[Sequence[tuple[Any, ...]]]:
    """The rows of select `q`, `ROWS` at a time, off the driver's cursor where it is SQLite's or
    psycopg's (building SQLAlchemy rows would cost more than reading them)."""
    if _raw_ok(conn):
        compiled = q.compile(dialect=conn.dialect)
        params = compiled.construct_params()
        if conn.dialect.name == "sqlite":
            args: Any = tuple(params[k] for k in compiled.positiontup or ())
        else:
            args = params
        yield from _raw(conn, str(compiled), args)
        return
    yield from conn.execution_options(yield_per=ROWS).execute(q).tuples().partitions()


def _raw(conn: Connection, sql: str, args: Any) -> Iterator[Sequence[tuple[Any, ...]]]:
    """`sql` run on the driver's own cursor, `ROWS` rows at a time: SQLite's steps through the
    result, PostgreSQL's is a named (server-side) cursor."""
    raw = conn.connection.dbapi_connection
    sqlite = conn.dialect.name == "sqlite"
    cur = raw.cursor() if sqlite else raw.cursor(name="syncd_load_view")  # type: ignore[union-attr,call-arg]
    try:
        cur.execute(sql, args)
        while part := cur.fetchmany(ROWS):
            yield part
    finally:
        cur.close()
