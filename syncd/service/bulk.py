"""Bulk service operations for the reconcile apply path. The caller owns the session and its
transaction.

Each operation has the same outcome as calling its per-row counterpart once per item, in
order, inside one transaction (same rows, versions, member counts, audit events and errors),
but costs a few statements per chunk of `CHUNK` items instead of several per item:

- `create_users` ≡ `users.create_user` per body; `create_teams` ≡ `teams.create_team` per
  body (bodies without members);
- `set_active` ≡ `users.set_active` per user id;
- `add_memberships` / `remove_memberships` ≡ `teams.change_members(add=…)` /
  `(remove=…)` once per team, with that team's user ids in the order given;
- `join_teams` (one user into new and existing teams, the on-login write) ≡ `create_teams`
  then `add_memberships`, the new teams written with their member (no version bump after).

Invariants kept: every read and write is limited to the actor's directory; a version grows
only on a real change (one bump per team per call, as one `change_members` call does);
`member_count` stays equal to the number of membership rows; one audit event per created or
changed user or team, in the same transaction; a feed other than "manual" never removes a
manual membership. On an error nothing is undone here: the caller rolls the transaction back.
Errors are the per-row ones (type and, for a single bad item, message); when several items
are bad in different ways, which error comes first may differ (bulk validates every body,
then checks uniqueness, then scope), the store is unchanged either way.

The statements go through SQLAlchemy Core (executemany), and membership changes are one
`INSERT … SELECT` / `DELETE … IN (SELECT …)` per `PAIRS` pairs, the pairs sent as one JSON
parameter (SQLite `json_each`) or two arrays (PostgreSQL `unnest`), with RETURNING telling
which rows really changed. On SQLite, new users, their emails, audit events, change-feed rows
and the members of teams that have none are written on the driver's cursor instead
(`syncd.service.bulk_sqlite`, which states what it keeps equal). ORM objects the caller's
session already holds for these rows are not refreshed.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from itertools import chain, groupby
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from syncd.feed import writer as feed
from syncd.service import bulk_pg, bulk_sqlite
from syncd.service.common import chunks, in_scope
from syncd.service.context import Actor
from syncd.service.errors import Conflict, InvalidValue, NotFound
from syncd.service.pg_arrays import text_array
from syncd.service.resource import fold, normalize, require
from syncd.service.schema import GROUP, USER
from syncd.service.users import email_rows
from syncd.store.models import AuditEvent, Membership, Team, User, UserEmail, utcnow

USERS = User.__table__  # type: ignore[attr-defined]
EMAILS = UserEmail.__table__  # type: ignore[attr-defined]
TEAMS = Team.__table__  # type: ignore[attr-defined]
MEMBERSHIPS = Membership.__table__  # type: ignore[attr-defined]
AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]

_BUMP_TEAMS = (
    update(TEAMS)
    .where(TEAMS.c.id == bindparam("b_id"))
    .values(
        member_count=TEAMS.c.member_count + bindparam("b_delta"),
        version=TEAMS.c.version + 1,
        updated_at=bindparam("b_now"),
    )
)
_SET_USER = (
    update(USERS)
    .where(USERS.c.id == bindparam("b_id"))
    .values(
        data=bindparam("b_data", type_=USERS.c.data.type),
        active=bindparam("b_active"),
        version=USERS.c.version + 1,
        updated_at=bindparam("b_now"),
    )
)


#: memberships per INSERT/DELETE statement (sent as one JSON or two array parameters)
PAIRS = 20_000
_MEMBER_ROW = ("team_id", "user_id", "directory", "source", "created_at")
_COLS = "INSERT INTO memberships (team_id, user_id, directory, source, created_at) "
_ADD_SQLITE_RAW = (
    _COLS + "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), :dir, :src, :now "
    "FROM json_each(:pairs) WHERE true ON CONFLICT DO NOTHING RETURNING team_id, user_id"
)
_ADD_PG_RAW = (
    _COLS + "SELECT t, u, %(dir)s, %(src)s, %(now)s "
    "FROM unnest(CAST(%(teams)s AS varchar[]), CAST(%(users)s AS varchar[])) "
    "AS x(t, u) ON CONFLICT DO NOTHING RETURNING team_id, user_id"
)
_REMOVE_SQLITE = (
    "DELETE FROM memberships WHERE (team_id, user_id) IN "
    "(SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(:pairs)) "
    "{keep_manual}RETURNING team_id, user_id"
)
_REMOVE_PG = (
    "DELETE FROM memberships WHERE (team_id, user_id) IN "
    "(SELECT t, u FROM unnest(CAST(:teams AS varchar[]), CAST(:users AS varchar[])) AS x(t, u)) "
    "{keep_manual}RETURNING team_id, user_id"
)
_MISSING_SQLITE = text(
    "SELECT j.value FROM json_each(:ids) AS j LEFT JOIN users AS u "
    "ON u.id = j.value AND coalesce(u.directory, '') = :dir WHERE u.id IS NULL"
)
_MISSING_PG = text(
    "SELECT x.id FROM unnest(CAST(:ids AS varchar[])) AS x(id) LEFT JOIN users AS u "
    "ON u.id = x.id AND coalesce(u.directory, '') = :dir WHERE u.id IS NULL"
)


# -- users -----------------------------------------------------------------------------------


def create_users(session: Session, *, actor: Actor, bodies: Sequence[dict[str, Any]]) -> list[str]:
    """New users in the actor's directory, one per body; returns their ids in body order.

    Conflict (naming the first body in order that clashes, userName before externalId) if a
    userName or externalId is taken in the directory or repeated within `bodies`.
    """
    canonical = list(map(_canonical_user, bodies))
    datas = [b if c else normalize(USER, b) for b, c in zip(bodies, canonical, strict=True)]
    for d, c in zip(datas, canonical, strict=True):
        if not c:  # a canonical body has a userName that is not blank
            require(USER, d)
    if not datas:
        return []
    keys = [fold(d["userName"]) for d in datas]
    _check_new(
        session,
        actor,
        USERS,
        "user_name_key",
        datas,
        keys,
        lambda d: f"userName {d['userName']!r} is already taken",
    )
    now = utcnow()
    ids = new_ids(len(datas))
    events = [("user.create", "user", i, None, d) for i, d in zip(ids, datas, strict=True)]
    if bulk_sqlite.is_sqlite(session):
        texts: list[str] = []

        def write() -> None:
            texts[:] = bulk_sqlite.insert_users(session, actor.directory, ids, datas, keys, now)

        _unique(session, "userName", write)
        _audit(session, actor, now, events, afters=texts)
        return ids
    rows = [_user_row(i, actor.directory, d, now) for i, d in zip(ids, datas, strict=True)]
    emails = [e for i, d in zip(ids, datas, strict=True) for e in email_rows(i, d.get("emails"))]
    if _is_pg(session):  # a user's data is encoded once, for its row and its audit event
        texts = bulk_pg.insert_unique(session, USERS, rows, "userName")["data"]
        bulk_pg.copy_dicts(session, EMAILS, emails)
        bulk_pg.audit(session, actor, now, events, afters=texts)
        return ids
    _insert_unique(session, USERS, rows, "userName")
    if emails:
        session.execute(insert(EMAILS), emails)
    _audit(session, actor, now, events)
    return ids


def set_active(session: Session, *, actor: Actor, user_ids: Sequence[str], active: bool) -> list[str]:
    """Deactivate or reactivate users; returns the ids whose stored data really changed.

    NotFound (naming the first missing id) if any id is not a user of the actor's directory.
    """
    ids = list(dict.fromkeys(user_ids))
    found: dict[str, dict[str, Any]] = {}
    for part in chunks(ids):
        # FOR UPDATE, as users.set_active: `data` is rewritten from what is read here, so a
        # concurrent PATCH must commit before the read, not be overwritten after it.
        q = (
            select(USERS.c.id, USERS.c.data)
            .where(USERS.c.id.in_(part), in_scope(USERS.c.directory, actor))
            .order_by(USERS.c.id)
            .with_for_update()
        )
        found.update((i, d) for i, d in session.execute(q).all())
    for u in ids:
        if u not in found:
            raise NotFound(f"User {u} not found")
    now = utcnow()
    action = "user.activate" if active else "user.deactivate"
    changed: list[str] = []
    params: list[dict[str, Any]] = []
    events: list[tuple[str, str, str, Any, Any]] = []
    for u in ids:
        before = found[u]
        after = {**before, "active": active}
        if after == before:
            continue
        changed.append(u)
        params.append({"b_id": u, "b_data": after, "b_active": active, "b_now": now})
        events.append((action, "user", u, before, after))
    if params:
        session.execute(_SET_USER, params)
        _audit(session, actor, now, events)
    return changed


#: a user body whose strings together are this short cannot break a length limit, even
#: casefolded (a character folds to at most three)
_SHORT = 512 // 3
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_USER_KEYS = frozenset(("userName", "externalId", "active", "displayName", "name", "emails"))
_NAME_KEYS = frozenset(("givenName", "familyName"))
_EMAIL_KEYS = ["value", "type", "primary"]
_STR = frozenset((str,))


def _canonical_user(b: dict[str, Any]) -> bool:
    """Whether `normalize(USER, b) == b` surely holds and `require` passes, checked without
    walking the schema: the shape a pull writes (`reconcile.apply.user_body`) with plain,
    short, non-empty strings (userName not blank). A pull's users all are (its admission stage
    cleaned them); anything else is normalised."""
    if not _USER_KEYS.issuperset(b) or type(b.get("active", True)) is not bool:
        return False
    # an absent externalId or displayName is canonical, a None one is not (normalize drops it)
    strs = [b.get("userName"), b.get("externalId", "-"), b.get("displayName", "-")]
    name = b.get("name")
    if name is not None:
        if type(name) is not dict or not name or not _NAME_KEYS.issuperset(name):
            return False
        strs += name.values()
    emails = b.get("emails")
    if emails is not None:
        if type(emails) is not list or len(emails) != 1:
            return False
        e = emails[0]
        if type(e) is not dict or list(e) != _EMAIL_KEYS or e["type"] != "work" or e["primary"] is not True:
            return False
        strs.append(e["value"])
    if not _STR.issuperset(map(type, strs)) or "" in strs:  # exact str, none empty
        return False
    joined = "".join(strs)
    return len(joined) <= _SHORT and _CONTROL.search(joined) is None and not strs[0].isspace()


# -- teams -----------------------------------------------------------------------------------


_TEAM_KEYS = frozenset(("displayName", "externalId"))


def _canonical_team(b: dict[str, Any]) -> bool:
    """Whether `normalize(GROUP, b) == b` surely holds and `require` passes, checked without
    walking the schema: the body a pull or a login writes (displayName and externalId) with
    plain, short, non-blank strings. Anything else is normalised."""
    if type(b) is not dict or not _TEAM_KEYS.issuperset(b):
        return False
    name, ext = b.get("displayName"), b.get("externalId", "-")
    if type(name) is not str or type(ext) is not str or not ext or name.isspace():
        return False
    joined = name + ext
    return len(name) > 0 and len(joined) <= _SHORT and _CONTROL.search(joined) is None


def create_teams(session: Session, *, actor: Actor, bodies: Sequence[dict[str, Any]]) -> list[str]:
    """New teams in the actor's directory, one per body; returns their ids in body order.

    Bodies carry attributes only (InvalidValue if one has members: add them with
    `add_memberships`). Conflict as `create_users`, on displayName then externalId.
    """
    now = utcnow()
    ids, datas = _new_teams(session, actor, bodies, now, member_count=0)
    _audit(
        session, actor, now, [("team.create", "team", i, None, d) for i, d in zip(ids, datas, strict=True)]
    )
    return ids


def join_teams(
    session: Session,
    *,
    actor: Actor,
    user_id: str,
    bodies: Sequence[dict[str, Any]],
    team_ids: Sequence[str],
) -> tuple[list[str], list[str]]:
    """One user joins new teams (one per body) and the existing `team_ids`: the outcome of
    `create_teams(bodies)`, then `add_memberships` of (team, `user_id`) for the new teams in id
    order, then for the existing ones (same rows, versions, counts, audit events and change
    rows, in that order; the per-row errors). Returns (the new teams' ids in body order, the
    existing teams the user really joined, in id order).

    A new team is written with the user as its only member (count 1, version 2: its create and
    its member change), its membership without a conflict check (no other transaction can see
    the team before this one commits), and its create and member events in one audit write.
    """
    now = utcnow()
    ids, datas = _new_teams(session, actor, bodies, now, member_count=1)
    if ids:
        _check_users(session, actor, [user_id])
        rows = [(t, user_id, actor.directory, actor.source, now) for t in ids]
        if _is_pg(session):
            bulk_pg.copy_rows(session, MEMBERSHIPS, _MEMBER_ROW, rows)
        else:
            session.execute(insert(MEMBERSHIPS), [dict(zip(_MEMBER_ROW, r, strict=True)) for r in rows])
        created = [("team.create", "team", i, None, d) for i, d in zip(ids, datas, strict=True)]
        added = {"members_added": [user_id]}
        _audit(session, actor, now, created + [("team.members", "team", t, None, added) for t in sorted(ids)])
    pairs = [(t, user_id) for t in sorted(set(team_ids))]
    joined = add_memberships(session, actor=actor, pairs=pairs) if pairs else {}
    return ids, sorted(joined)


def _new_teams(
    session: Session, actor: Actor, bodies: Sequence[dict[str, Any]], now: Any, *, member_count: int
) -> tuple[list[str], list[dict[str, Any]]]:
    """Validate `bodies` and insert their teams (version 1, or 2 when they start with members:
    their create and that member change); returns (ids in body order, normalised bodies)."""
    datas = []
    for b in bodies:
        if _canonical_team(b):
            datas.append(b)
            continue
        if any(str(k).lower() == "members" and v for k, v in b.items()):
            raise InvalidValue("create_teams takes no members; add them with add_memberships")
        d = normalize(GROUP, b)
        require(GROUP, d)
        datas.append(d)
    if not datas:
        return [], []
    keys = [fold(d["displayName"]) for d in datas]
    _check_new(
        session,
        actor,
        TEAMS,
        "display_name_key",
        datas,
        keys,
        lambda d: f"a group named {d['displayName']!r} already exists",
    )
    ids = new_ids(len(datas))
    rows = [
        {
            "id": i,
            "directory": actor.directory,
            "external_id": d.get("externalId"),
            "display_name": d["displayName"],
            "display_name_key": k,
            "data": d,
            "member_count": member_count,
            "archived": False,
            "version": 2 if member_count else 1,
            "created_at": now,
            "updated_at": now,
        }
        for i, d, k in zip(ids, datas, keys, strict=True)
    ]
    _insert_unique(session, TEAMS, rows, "displayName")
    return ids, datas


def add_memberships(
    session: Session, *, actor: Actor, pairs: Iterable[tuple[str, str]]
) -> dict[str, list[str]]:
    """Insert the (team id, user id) memberships that do not exist yet; returns, per team that
    gained members, the user ids really added (in the order given).

    NotFound if a team, InvalidValue if a user, is not in the actor's directory. Existing
    memberships keep their source. Each team that gained members: count += added, version + 1,
    one "team.members" audit event.
    """
    by_team = _group(pairs)
    if not by_team:
        return {}
    _check_teams(session, actor, list(by_team))
    _check_users(session, actor, list(dict.fromkeys(chain.from_iterable(by_team.values()))))
    now = utcnow()
    if not _is_pg(session):
        added = bulk_sqlite.add_memberships(
            session, directory=actor.directory, source=actor.source, at=now, by_team=by_team, chunk=PAIRS
        )
        return _finish_changed(session, actor, now, added, "members_added", +1)
    if bulk_pg.add_to_empty_teams(session, by_team, directory=actor.directory, source=actor.source, now=now):
        return _finish_changed(session, actor, now, dict(by_team), "members_added", +1)
    flat = [(t, u) for t, us in by_team.items() for u in us]
    got: set[tuple[str, str]] = set()
    pg = _is_pg(session)
    conn = session.connection()
    stamp = MEMBERSHIPS.c.created_at.type.bind_processor(conn.dialect)
    params: dict[str, Any] = {
        "dir": actor.directory,
        "src": actor.source,
        "now": stamp(now) if stamp else now,
    }
    # straight on the driver's cursor: a million RETURNING rows as SQLAlchemy rows cost more
    # than the insert itself
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        for part in chunks(flat, PAIRS):  # type: ignore[arg-type]
            cur.execute(_ADD_PG_RAW if pg else _ADD_SQLITE_RAW, {**params, **_pairs(pg, part)})
            got.update(map(tuple, cur.fetchall()))
    finally:
        cur.close()
    return _finish_members(session, actor, now, by_team, got, "members_added", +1)


def remove_memberships(
    session: Session, *, actor: Actor, pairs: Iterable[tuple[str, str]]
) -> dict[str, list[str]]:
    """Delete the given (team id, user id) memberships; returns, per team that lost members,
    the user ids really removed (in the order given).

    NotFound if a team is not in the actor's directory. A feed other than "manual" never
    removes a manual membership. Each team that lost members: count -= removed, version + 1,
    one "team.members" audit event.
    """
    by_team = _group(pairs)
    if not by_team:
        return {}
    _check_teams(session, actor, list(by_team))
    flat = [(t, u) for t, us in by_team.items() for u in us]
    got: set[tuple[str, str]] = set()
    pg = _is_pg(session)
    keep_manual = "AND source != 'manual' " if actor.feed != "manual" else ""
    stmt = text((_REMOVE_PG if pg else _REMOVE_SQLITE).format(keep_manual=keep_manual))
    for part in chunks(flat, PAIRS):  # type: ignore[arg-type]
        got.update((t, u) for t, u in session.execute(stmt, _pairs(pg, part)).all())
    return _finish_members(session, actor, utcnow(), by_team, got, "members_removed", -1)


# -- internals -------------------------------------------------------------------------------

_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def new_ids(n: int) -> list[str]:
    """`n` random version-4 UUIDs (as `str(uuid.uuid4())` writes them), in ascending order:
    rows created together then go into the id-keyed B-trees (the table's key, the
    (directory, id) index, emails, audit and feed indexes) in key order."""
    raw = os.urandom(16 * n).hex()
    out = [
        f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"
        for h in (raw[i : i + 32] for i in range(0, 32 * n, 32))
    ]
    out.sort()
    return out


def _group(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Pairs grouped by team, first-seen order, duplicates dropped."""
    out: dict[str, list[str]] = {}
    for t, run in groupby(pairs, key=itemgetter(0)):  # a team's pairs mostly come together
        users = dict.fromkeys(map(itemgetter(1), run))
        seen = out.get(t)
        out[t] = list(users) if seen is None else list(dict.fromkeys(chain(seen, users)))
    return out


def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _pairs(pg: bool, pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """(team id, user id) pairs as statement parameters: two arrays (PostgreSQL), JSON (SQLite)."""
    if pg:
        return {
            "teams": text_array([t for t, _ in pairs]),
            "users": text_array([u for _, u in pairs]),
        }
    return {"pairs": orjson.dumps(pairs).decode()}


def _check_users(session: Session, actor: Actor, user_ids: list[str]) -> None:
    """`members.check_users` in one statement per `PAIRS` ids (PostgreSQL: one in all, since its
    anti-join hashes the directory's users whatever the number of ids): InvalidValue naming
    every id that is not a user of the actor's directory."""
    pg = _is_pg(session)
    missing: set[str] = set()
    for part in chunks(user_ids, max(len(user_ids), 1) if pg else PAIRS):
        params = {"ids": text_array(part)} if pg else {"ids": bulk_sqlite.dumps(list(part))}
        missing.update(
            session.execute(
                _MISSING_PG if pg else _MISSING_SQLITE, {**params, "dir": actor.directory or ""}
            ).scalars()
        )
    if missing:
        ordered = [u for u in user_ids if u in missing]
        shown = ", ".join(ordered[:20]) + (f" and {len(ordered) - 20} more" if len(ordered) > 20 else "")
        raise InvalidValue(f"unknown members (no such user in this directory): {shown}")


def _check_teams(session: Session, actor: Actor, team_ids: list[str]) -> None:
    found: set[str] = set()
    for part in chunks(team_ids):
        q = select(TEAMS.c.id).where(TEAMS.c.id.in_(part), in_scope(TEAMS.c.directory, actor))
        found.update(session.execute(q).scalars())
    for t in team_ids:
        if t not in found:
            raise NotFound(f"Group {t} not found")


def _finish_members(
    session: Session,
    actor: Actor,
    now: Any,
    by_team: dict[str, list[str]],
    got: set[tuple[str, str]],
    key: str,
    sign: int,
) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if len(got) == sum(map(len, by_team.values())):  # every pair changed (`got` ⊆ the pairs)
        out = dict(by_team)
    else:
        for t, us in by_team.items():
            hit = [u for u in us if (t, u) in got]
            if hit:
                out[t] = hit
    return _finish_changed(session, actor, now, out, key, sign)


def _finish_changed(
    session: Session, actor: Actor, now: Any, out: dict[str, list[str]], key: str, sign: int
) -> dict[str, list[str]]:
    """Count, version and audit of the teams whose members `out` lists as changed."""
    if out:
        session.execute(
            _BUMP_TEAMS, [{"b_id": t, "b_delta": sign * len(us), "b_now": now} for t, us in out.items()]
        )
        _audit(session, actor, now, [("team.members", "team", t, None, {key: us}) for t, us in out.items()])
    return out


def _check_new(
    session: Session,
    actor: Actor,
    table: Any,
    key_column: str,
    datas: list[dict[str, Any]],
    keys: list[str],
    name_taken: Callable[[dict[str, Any]], str],
) -> None:
    """Conflict for the first of `datas` whose name key or externalId is taken in the actor's
    directory or by an earlier item (the per-row checks, in order: name before externalId)."""
    exts = [d.get("externalId") for d in datas]
    taken_keys = _taken(session, table.c[key_column], table.c.directory, actor, keys)
    taken_exts = _taken(session, table.c.external_id, table.c.directory, actor, [e for e in exts if e])
    seen_keys: set[str] = set()
    seen_exts: set[str] = set()
    for d, k, e in zip(datas, keys, exts, strict=True):
        if k in taken_keys or k in seen_keys:
            raise Conflict(name_taken(d))
        if e is not None and (e in taken_exts or e in seen_exts):
            raise Conflict(f"externalId {e!r} is already taken")
        seen_keys.add(k)
        if e is not None:
            seen_exts.add(e)


def _taken(session: Session, column: Any, directory: Any, actor: Actor, values: list[str]) -> set[str]:
    """The subset of `values` already present in `column` within the actor's directory.

    One join per `PAIRS` values against the (directory, column) unique index. (An `IN (…)`
    per 500 values was quadratic on PostgreSQL right after a bulk load: with stale statistics
    each became a scan of the whole directory — 193 s of a 100k-user initial sync; a plain
    join became a hash of the whole directory per batch. On PostgreSQL each value is one
    index probe, `LATERAL (… LIMIT 1)`, which no plan can turn into a scan.)
    """
    pg = _is_pg(session)
    where = f"coalesce(t.{directory.name}, '') = :dir AND t.{column.name} = "
    if pg:  # LATERAL … LIMIT 1: an index probe per value, whatever the (often stale) statistics
        sql = (
            f"SELECT x.v FROM unnest(CAST(:vals AS varchar[])) AS x(v) CROSS JOIN LATERAL "
            f"(SELECT 1 FROM {column.table.name} AS t WHERE "
        )
        stmt = text(sql + where + "x.v LIMIT 1) AS t")
    else:  # CROSS JOIN: SQLite keeps json_each as the outer loop and looks each value up
        sql = f"SELECT x.value FROM json_each(:vals) AS x CROSS JOIN {column.table.name} AS t WHERE "
        stmt = text(sql + where + "x.value")
    out: set[str] = set()
    for part in chunks(list(dict.fromkeys(values)), PAIRS):
        vals = text_array(part) if pg else bulk_sqlite.dumps(list(part))
        out.update(session.execute(stmt, {"vals": vals, "dir": actor.directory or ""}).scalars())
    return out


def _insert_unique(session: Session, table: Any, rows: list[dict[str, Any]], what: str) -> None:
    """executemany INSERT; a unique-index violation (a concurrent writer won) becomes Conflict."""
    if _is_pg(session):
        bulk_pg.insert_unique(session, table, rows, what)
        return
    _unique(session, what, lambda: session.execute(insert(table), rows))


def _unique(session: Session, what: str, write: Callable[[], Any]) -> None:
    """`write` in a savepoint; a unique-index violation (a concurrent writer won) becomes Conflict."""
    try:
        with session.begin_nested():
            write()
    except (IntegrityError, sqlite3.IntegrityError) as exc:
        raise Conflict(f"a {what} in this batch already exists") from exc


def _user_row(uid: str, directory: str | None, data: dict[str, Any], now: Any) -> dict[str, Any]:
    """The users row for normalised `data` (the columns `users._write` derives)."""
    name = data.get("name") or {}
    return {
        "id": uid,
        "directory": directory,
        "external_id": data.get("externalId"),
        "user_name": data["userName"],
        "user_name_key": fold(data["userName"]),
        "display_name": data.get("displayName"),
        "given_name": name.get("givenName"),
        "family_name": name.get("familyName"),
        "active": data.get("active", True),
        "data": data,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


def _audit(
    session: Session,
    actor: Actor,
    now: Any,
    events: list[tuple[str, str, str, Any, Any]],
    *,
    afters: Sequence[str] | None = None,
) -> None:
    """One audit event per (action, resource type, resource id, before, after). `afters`
    (SQLite): the `after` values already encoded by `bulk_sqlite.dumps`, in event order."""
    if _is_pg(session):
        return bulk_pg.audit(session, actor, now, events)
    if bulk_sqlite.is_sqlite(session):
        bulk_sqlite.insert_audit(
            session,
            directory=actor.directory,
            actor=actor.label,
            sync_run_id=actor.sync_run_id,
            at=now,
            events=events,
            afters=afters,
        )
        feed.record(session, directory=actor.directory, actor=actor.label, events=events, at=now)
        return
    session.execute(
        insert(AUDIT),
        [
            {
                "at": now,
                "directory": actor.directory,
                "actor": actor.label,
                "action": action,
                "resource_type": rtype,
                "resource_id": rid,
                "before": before,
                "after": after,
                "sync_run_id": actor.sync_run_id,
            }
            for action, rtype, rid, before, after in events
        ],
    )
    feed.record(session, directory=actor.directory, actor=actor.label, events=events, at=now)
