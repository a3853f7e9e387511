"""`syncd.service.bulk_sqlite`: the raw-driver writes keep the values SQLAlchemy would store,
the member fast path returns exactly the pairs it inserted (also when a membership exists
that no count knew of), and the index rebuild never leaves the table without its indexes."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from syncd.service import bulk, bulk_sqlite, teams, tokens, users
from syncd.service.context import Actor
from syncd.store import session_scope
from syncd.store.models import Membership, Team, User, utcnow
from tests.conftest import migrated_store

PULL = Actor("pull", "d", "x", sync_run_id=None)
MANUAL = Actor("manual", "d", "x", sync_run_id=None)


@pytest.fixture
def eng(tmp_path: Path) -> Iterator[Engine]:
    with migrated_store("sqlite", tmp_path) as e:
        with session_scope(e) as s:
            tokens.ensure_directory(s, name="d", kind="graph")
        yield e


@pytest.mark.parametrize(
    "value",
    [
        None,
        {"userName": "ann@x", "active": True, "name": {"givenName": "Ann"}},
        {"members_added": ["a", "b"]},
        "é ü 漢字 \u2028",
        {"n": 2**70},  # beyond 64 bits: orjson refuses, json writes it
        {"bad": "\ud800"},  # lone surrogate: orjson refuses
        {"x": float("nan"), "y": [float("inf"), -float("inf")], "z": 1.5},
        [1, 2.25, True, False, None, {"a": []}],
    ],
)
def test_dumps_reads_back_as_sqlalchemys_json(value: Any) -> None:
    out = bulk_sqlite.dumps(value)
    assert isinstance(out, str)
    assert repr(json.loads(out)) == repr(json.loads(json.dumps(value)))


def _team(eng: Engine, name: str) -> str:
    with session_scope(eng) as s:
        return bulk.create_teams(s, actor=PULL, bodies=[{"displayName": name, "externalId": name}])[0]


def _users(eng: Engine, n: int) -> list[str]:
    with session_scope(eng) as s:
        bodies = [{"userName": f"u{i}@x", "externalId": f"u{i}"} for i in range(n)]
        return bulk.create_users(s, actor=PULL, bodies=bodies)


def _members(eng: Engine) -> set[tuple[str, str, str]]:
    with session_scope(eng, write=False) as s:
        q = select(Membership.team_id, Membership.user_id, Membership.source)
        return {tuple(r) for r in s.execute(q).all()}  # type: ignore[misc]


def _counts_ok(eng: Engine) -> bool:
    with session_scope(eng, write=False) as s:
        rows = s.execute(select(Team.id, Team.member_count)).all()
        return all(
            n == s.execute(text("SELECT count(*) FROM memberships WHERE team_id = :t"), {"t": t}).scalar()
            for t, n in rows
        )


def _indexes(eng: Engine) -> list[tuple[str, str]]:
    with eng.connect() as c:
        q = "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'memberships' AND type = 'index'"
        return sorted(tuple(r) for r in c.exec_driver_sql(q).all())  # type: ignore[misc]


def test_an_uncounted_membership_sends_the_batch_down_the_general_path(eng: Engine) -> None:
    t = _team(eng, "eng")
    u = _users(eng, 3)
    with session_scope(eng) as s:  # a row member_count does not know of
        s.execute(
            text(
                "INSERT INTO memberships VALUES (:t, :u, 'd', 'manual', '2026-01-01 00:00:00.000000', NULL)"
            ),
            {"t": t, "u": u[1]},
        )
    with session_scope(eng) as s:
        got = bulk.add_memberships(s, actor=PULL, pairs=[(t, x) for x in u])
    assert got == {t: [u[0], u[2]]}
    assert _members(eng) == {(t, u[0], "pull"), (t, u[1], "manual"), (t, u[2], "pull")}


def test_a_member_added_meanwhile_keeps_its_source_and_the_count_stays_right(eng: Engine) -> None:
    t, empty = _team(eng, "eng"), _team(eng, "ops")
    u = _users(eng, 3)
    with session_scope(eng) as s:  # e.g. a manual add between the team batch and the member batch
        teams.change_members(s, actor=MANUAL, team_id=t, add=[u[2]])
    with session_scope(eng) as s:
        got = bulk.add_memberships(s, actor=PULL, pairs=[(t, x) for x in u] + [(empty, u[0])])
    assert got == {t: [u[0], u[1]], empty: [u[0]]}
    assert (t, u[2], "manual") in _members(eng) and len(_members(eng)) == 4
    assert _counts_ok(eng)


@pytest.mark.parametrize("ratio", [1, 10**9])  # rebuilt / inserted into
def test_indexes_are_the_same_after_a_batch(eng: Engine, monkeypatch: pytest.MonkeyPatch, ratio: int) -> None:
    monkeypatch.setattr(bulk_sqlite, "REBUILD_RATIO", ratio)
    before = _indexes(eng)
    t = _team(eng, "eng")
    u = _users(eng, 5)
    with session_scope(eng) as s:
        assert bulk.add_memberships(s, actor=PULL, pairs=[(t, x) for x in u]) == {t: u}
    assert _indexes(eng) == before and any(n == "ix_memberships_user" for n, _ in before)
    with eng.connect() as c:
        plan = c.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT team_id FROM memberships WHERE user_id = 'x'"
        ).all()
    assert "ix_memberships_user" in str(plan)


def test_a_failed_fast_insert_leaves_the_indexes_in_place(eng: Engine) -> None:
    before = _indexes(eng)
    t = _team(eng, "eng")
    with session_scope(eng) as s:
        cur = s.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        with pytest.raises(sqlite3.IntegrityError):  # no such user: the foreign key refuses it
            bulk_sqlite._insert_fresh(cur, "d", "pull", "2026-01-01 00:00:00.000000", {t: ["nobody"]})
        cur.close()
    assert _indexes(eng) == before and _members(eng) == set()


def test_raw_rows_store_timestamps_and_booleans_as_sqlalchemy_does(eng: Engine) -> None:
    with session_scope(eng) as s:
        users.create_user(s, actor=PULL, body={"userName": "row@x", "externalId": "row"})
    _users(eng, 1)
    with eng.connect() as c:
        rows = c.exec_driver_sql("SELECT user_name, created_at, active, typeof(active) FROM users").all()
        audit = c.exec_driver_sql('SELECT at, typeof("before") FROM audit_events').all()
        changes = c.exec_driver_sql("SELECT at, xid FROM changes").all()
    stamp = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")
    assert {(active, kind) for _, _, active, kind in rows} == {(1, "integer")}
    assert all(stamp.match(r[1]) for r in rows)
    assert all(stamp.match(a) and kind == "text" for a, kind in audit)  # JSON null, as SQLAlchemy writes
    assert all(stamp.match(a) and x == 0 for a, x in changes)
    with session_scope(eng, write=False) as s:
        got = s.execute(select(User.created_at)).scalars().all()
    assert all(g.year == utcnow().year for g in got)


def _user_indexes(eng: Engine) -> list[tuple[str, str]]:
    with eng.connect() as c:
        q = (
            "SELECT name, sql FROM sqlite_master "
            "WHERE tbl_name IN ('users', 'user_emails') AND type = 'index'"
        )
        return sorted(tuple(r) for r in c.exec_driver_sql(q).all())  # type: ignore[misc]


@pytest.mark.parametrize("ratio", [1, 10**9])  # rebuilt / inserted into
def test_user_indexes_are_the_same_after_a_batch(
    eng: Engine, monkeypatch: pytest.MonkeyPatch, ratio: int
) -> None:
    monkeypatch.setattr(bulk_sqlite, "REBUILD_RATIO", ratio)
    before = _user_indexes(eng)
    assert {"ux_users_user_name", "ux_users_external_id", "ix_user_emails_value_key"} <= {
        n for n, _ in before
    }
    with session_scope(eng) as s:
        bodies = [
            {"userName": f"u{i}@x", "externalId": f"u{i}", "emails": [{"value": f"u{i}@x"}]} for i in range(5)
        ]
        bulk.create_users(s, actor=PULL, bodies=bodies)
    assert _user_indexes(eng) == before
    with eng.connect() as c:
        plan = c.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT id FROM users "
            "WHERE coalesce(directory, '') = 'd' AND user_name_key = 'u1@x'"
        ).all()
    assert "ux_users_user_name" in str(plan)


@pytest.mark.parametrize("ratio", [1, 10**9])  # rebuilt / inserted into
def test_a_duplicate_in_a_user_batch_is_a_conflict_and_writes_nothing(
    eng: Engine, monkeypatch: pytest.MonkeyPatch, ratio: int
) -> None:
    from syncd.service.errors import Conflict

    monkeypatch.setattr(bulk_sqlite, "REBUILD_RATIO", ratio)
    before = _user_indexes(eng)
    datas = [{"userName": "Same@x", "externalId": "a"}, {"userName": "same@x", "externalId": "b"}]
    with session_scope(eng) as s:
        with pytest.raises(Conflict):  # what a concurrent writer winning the name looks like
            bulk._unique(
                s,
                "userName",
                lambda: bulk_sqlite.insert_users(s, "d", bulk.new_ids(2), datas, ["same@x"] * 2, utcnow()),
            )
        assert s.execute(text("SELECT count(*) FROM users")).scalar() == 0
    assert _user_indexes(eng) == before


def test_the_fresh_member_insert_cannot_abort_so_it_needs_no_statement_journal(eng: Engine) -> None:
    # A statement that writes several rows and may abort part-way gets a statement journal: a
    # copy of every page it changes that its transaction had changed before (2.2 GB written
    # for the last 300k-row member batch of an L pull). OR IGNORE compiles no abort at all.
    with eng.connect() as c:
        program = c.exec_driver_sql(
            "EXPLAIN " + bulk_sqlite._ADD_TEAM, ("t", "d", "pull", "2026-01-01 00:00:00.000000", "[]")
        ).all()
    oe_abort = 2
    aborts = [r for r in program if r[1] in ("Halt", "HaltIfNull") and r[2] != 0 and r[3] == oe_abort]
    assert program and aborts == []


def test_a_fresh_pair_breaking_a_constraint_takes_the_general_path_and_its_error(eng: Engine) -> None:
    t = _team(eng, "eng")
    u = _users(eng, 2)
    with session_scope(eng) as s:
        cur = s.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        # source NOT NULL: the fast insert ignores the rows, rolls back, and says so
        assert not bulk_sqlite._insert_fresh(cur, "d", None, "2026-01-01 00:00:00.000000", {t: u})  # type: ignore[arg-type]
        cur.close()
        assert _members(eng) == set()
        with pytest.raises(sqlite3.IntegrityError, match="NOT NULL"):
            bulk_sqlite.add_memberships(
                s,
                directory="d",
                source=None,  # type: ignore[arg-type]
                at=utcnow(),
                by_team={t: u},
                chunk=10,
            )
    assert _members(eng) == set() and _counts_ok(eng)
