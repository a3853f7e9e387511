"""`syncd.service.bulk_pg` (PostgreSQL COPY paths of the bulk operations): the rows it writes
are, as stored text, the rows the per-row INSERT path writes (JSON columns included, since
`json` keeps its input text); change-feed rows carry the transaction's xid and are read back
in event order; a membership COPY that loses a race to a concurrent writer falls back to the ON
CONFLICT path with the same outcome; driver errors surface as SQLAlchemy's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from syncd.service import bulk, bulk_pg, teams, tokens, users
from syncd.service.context import Actor
from syncd.service.errors import Conflict
from syncd.store import session_scope
from syncd.store.models import Membership, utcnow
from tests.conftest import migrated_store

pytestmark = pytest.mark.postgres

BODIES: list[dict[str, Any]] = [
    {"userName": "ann@x", "externalId": "e-ann", "active": True},
    {
        "userName": "bé@x",
        "externalId": "e-bé",
        "displayName": 'Quote " and \\ back',
        "name": {"givenName": "Zoë", "familyName": "O'Neil"},
        "emails": [{"value": "bé@x", "type": "work", "primary": True}],
        "active": False,
    },
    {"userName": "cid@x", "externalId": "e-cid", "nickName": "日本語", "title": "ä"},
]


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Engine]:
    with migrated_store("postgres", tmp_path) as eng:
        with session_scope(eng) as s:
            for d in ("copy", "row"):
                tokens.ensure_directory(s, name=d, kind="graph")
        yield eng


def actor(directory: str) -> Actor:
    return Actor("pull", directory, f"pull:{directory}", sync_run_id=None)


def raw(engine: Engine, sql: str, directory: str) -> list[tuple[Any, ...]]:
    with engine.connect() as c:
        return [tuple(r) for r in c.execute(text(sql), {"d": directory}).all()]


USER_TEXT = (
    "SELECT user_name, user_name_key, external_id, display_name, given_name, family_name, active, "
    "data::text, version FROM users WHERE directory = :d ORDER BY user_name"
)
EMAIL_TEXT = (
    'SELECT e.value, e.value_key, e.type, e."primary" FROM user_emails e JOIN users u ON u.id = e.user_id '
    "WHERE u.directory = :d ORDER BY e.id"
)
AUDIT_TEXT = (
    "SELECT action, resource_type, before IS NULL, before::text, after::text FROM audit_events "
    "WHERE directory = :d ORDER BY id"
)
CHANGE_TEXT = (
    "SELECT kind, resource_type, name, data IS NULL, data::text FROM changes WHERE directory = :d ORDER BY id"
)


def test_copied_rows_are_the_insert_paths_rows_as_stored_text(pg: Engine) -> None:
    with session_scope(pg) as s:
        bulk.create_users(s, actor=actor("copy"), bodies=BODIES)
        bulk.create_teams(s, actor=actor("copy"), bodies=[{"displayName": 'Éng "q"', "externalId": "g"}])
    with session_scope(pg) as s:
        for b in BODIES:
            users.create_user(s, actor=actor("row"), body=b)
        teams.create_team(s, actor=actor("row"), body={"displayName": 'Éng "q"', "externalId": "g"})
    for sql in (USER_TEXT, EMAIL_TEXT, AUDIT_TEXT, CHANGE_TEXT):
        got, want = raw(pg, sql, "copy"), raw(pg, sql, "row")
        assert got == want and got, sql
    # audit `before` of a create is JSON null, as SQLAlchemy's JSON type writes None
    assert {r[2:4] for r in raw(pg, AUDIT_TEXT, "copy")} == {(False, "null")}


def test_change_rows_carry_the_transaction_xid_in_event_order(pg: Engine) -> None:
    # (the feed reader's visibility rule then holds as for INSERTed rows: it orders by (xid, id))
    with session_scope(pg) as s:
        bulk.create_users(s, actor=actor("copy"), bodies=BODIES)
        xid = s.execute(text("SELECT pg_current_xact_id()::text::bigint")).scalar_one()
    rows = raw(pg, "SELECT xid, kind, name FROM changes WHERE directory = :d ORDER BY xid, id", "copy")
    assert rows == [(xid, "user.created", b["userName"]) for b in BODIES]


def _team_and_users(engine: Engine, n: int) -> tuple[str, list[str]]:
    with session_scope(engine) as s:
        a = actor("copy")
        uids = bulk.create_users(
            s, actor=a, bodies=[{"userName": f"u{i}@x", "externalId": f"u{i}"} for i in range(n)]
        )
        (tid,) = bulk.create_teams(s, actor=a, bodies=[{"displayName": "eng", "externalId": "eng"}])
    return tid, uids


@pytest.mark.parametrize("raced", [0, 1, 3])
def test_members_of_a_new_team_lost_to_a_concurrent_writer_fall_back_to_on_conflict(
    pg: Engine, raced: int
) -> None:
    tid, uids = _team_and_users(pg, 6)
    # a concurrent writer committed memberships of the new team after the batch planned them
    # (its count bump is left out: the COPY path is chosen while the team still looks empty)
    with session_scope(pg) as s:
        for u in uids[:raced]:
            s.add(Membership(team_id=tid, user_id=u, directory="copy", source="login"))
    with session_scope(pg) as s:
        got = bulk.add_memberships(s, actor=actor("copy"), pairs=[(tid, u) for u in uids])
    assert got == {tid: uids[raced:]}
    rows = raw(pg, "SELECT user_id, source FROM memberships WHERE directory = :d", "copy")
    assert sorted(rows) == sorted([(u, "login") for u in uids[:raced]] + [(u, "pull") for u in uids[raced:]])
    ((count, version),) = raw(pg, "SELECT member_count, version FROM teams WHERE directory = :d", "copy")
    assert (count, version) == (len(uids) - raced, 2)


def test_members_of_a_team_with_members_take_the_on_conflict_path(pg: Engine) -> None:
    tid, uids = _team_and_users(pg, 4)
    with session_scope(pg) as s:
        teams.change_members(s, actor=actor("copy"), team_id=tid, add=uids[:1])
    with session_scope(pg) as s:
        assert not bulk_pg.add_to_empty_teams(s, {tid: uids}, directory="copy", source="pull", now=utcnow())
        got = bulk.add_memberships(s, actor=actor("copy"), pairs=[(tid, u) for u in uids])
    assert got == {tid: uids[1:]}


def test_a_taken_name_is_a_conflict_and_the_transaction_goes_on(pg: Engine) -> None:
    with session_scope(pg) as s:
        bulk.create_users(s, actor=actor("copy"), bodies=BODIES[:1])
    with session_scope(pg) as s:
        # a concurrent writer's row: the COPY hits the unique index, not the pre-check
        s.execute(
            text(
                "INSERT INTO users (id, directory, external_id, user_name, user_name_key, active, data, "
                "version, created_at, updated_at) VALUES ('x', 'copy', 'e-x', 'bob@x', 'bob@x', true, "
                "'{}', 1, now(), now())"
            )
        )
        rows = [bulk._user_row("y", "copy", {"userName": "bob@x", "externalId": "e-y"}, utcnow())]
        with pytest.raises(Conflict):
            bulk_pg.insert_unique(s, bulk.USERS, rows, "userName")
        assert s.execute(text("SELECT count(*) FROM users WHERE directory = 'copy'")).scalar_one() == 2


def test_driver_errors_surface_as_sqlalchemy_errors_with_their_sqlstate(pg: Engine) -> None:
    with session_scope(pg) as s, pytest.raises(IntegrityError) as err:
        bulk_pg.copy_rows(
            s,
            bulk.MEMBERSHIPS,
            ("team_id", "user_id", "source", "created_at"),
            [("no-team", "no-user", "pull", utcnow())],
        )
    assert getattr(err.value.orig, "sqlstate", None) == "23503"


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (None, "\\N"),
        ("plain-uuid-0f3c", "plain-uuid-0f3c"),
        ("a\tb", "a\\tb"),
        ("a\\b", "a\\\\b"),
        ("l1\nl2\r", "l1\\nl2\\r"),
        ("\\N", "\\\\N"),
        ("é 日本", "é 日本"),
    ],
)
def test_copy_text_fields(value: str | None, field: str) -> None:
    assert bulk_pg._copy_text(value) == field


def test_ids_with_copy_specials_round_trip(pg: Engine) -> None:
    team, user = "t\tab\\x", "u\nnl\\N"
    with session_scope(pg) as s:
        s.execute(
            text(
                "INSERT INTO teams (id, directory, display_name, display_name_key, data, member_count, "
                "archived, version, created_at, updated_at) VALUES (:t, 'copy', 'T', 't', '{}', 0, false, 1, "
                "now(), now())"
            ),
            {"t": team},
        )
        s.execute(
            text(
                "INSERT INTO users (id, directory, user_name, user_name_key, active, data, version, "
                "created_at, updated_at) VALUES (:u, 'copy', 'n', 'n', true, '{}', 1, now(), now())"
            ),
            {"u": user},
        )
        at = utcnow()
        assert bulk_pg.add_to_empty_teams(s, {team: [user]}, directory=None, source="pull", now=at)
    rows = raw(
        pg, "SELECT team_id, user_id, directory, source, created_at FROM memberships WHERE :d = :d", ""
    )
    assert rows == [(team, user, None, "pull", at)]


STAMPS = [
    datetime(2026, 12, 1, 2, 57, 38, 179240, tzinfo=UTC),
    datetime(2026, 12, 1, 8, 27, 38, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(1999, 1, 2, 3, 4, 5),  # naive: the session's time zone, as a bound parameter
]


def test_copied_timestamps_are_the_bound_parameters_values(pg: Engine) -> None:
    """`copy_rows` writes datetimes as text; PostgreSQL stores what it stores for the same
    datetime bound to an INSERT (aware ones exactly, naive ones in the session's zone)."""
    cols = ("at", "directory", "actor", "action", "resource_type", "resource_id")
    with session_scope(pg) as s:
        bulk_pg.copy_rows(
            s, bulk_pg.AUDIT, cols, [(t, "copy", "a", "x", "user", str(i)) for i, t in enumerate(STAMPS)]
        )
        for i, t in enumerate(STAMPS):
            s.execute(
                bulk_pg.AUDIT.insert().values(
                    at=t, directory="row", actor="a", action="x", resource_type="user", resource_id=str(i)
                )
            )
    sql = "SELECT resource_id, at FROM audit_events WHERE directory = :d ORDER BY resource_id"
    got, want = raw(pg, sql, "copy"), raw(pg, sql, "row")
    assert got == want and len(got) == 3
    assert got[0][1] == STAMPS[0] and got[1][1] == STAMPS[1]
