"""`syncd.service.pg_fk`: a membership COPY skips its per-row foreign-key triggers only when
the role may set `session_replication_role`, the table has no trigger of its own and no other
foreign key, and every referenced row was found and locked; the setting is back to `origin`
after the COPY; the locks keep a concurrent delete out until commit, and a missing row takes
the per-row path and its foreign-key violation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from syncd.service import bulk, bulk_pg, pg_fk, tokens
from syncd.service.context import Actor
from syncd.store import session_scope
from syncd.store.models import utcnow
from tests.conftest import PG_URL, migrated_store
from tests.service.conftest import server_version as _server_version

pytestmark = pytest.mark.postgres

ACTOR = Actor("pull", "d", "pull:d", sync_run_id=None)


@pytest.fixture
def pg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setattr(pg_fk, "MIN_ROWS", 1)  # the tests' few rows take the statement path
    with migrated_store("postgres", tmp_path) as eng:
        with session_scope(eng) as s:
            tokens.ensure_directory(s, name="d", kind="graph")
        yield eng


def _team_and_users(engine: Engine, n: int = 3, team: str = "eng") -> tuple[str, list[str]]:
    with session_scope(engine) as s:
        uids = bulk.create_users(s, actor=ACTOR, bodies=[{"userName": f"{team}{i}@x"} for i in range(n)])
        (tid,) = bulk.create_teams(s, actor=ACTOR, bodies=[{"displayName": team}])
    return tid, uids


def _copy(s: Session, tid: str, uids: list[str], seen: list[str]) -> pg_fk.Path:
    """`copy_checked` of (tid, u) rows; `seen` gets the replication role the COPY ran under."""

    def copy() -> None:
        seen.append(s.execute(text("SHOW session_replication_role")).scalar_one())
        lines = [f"{u}\t{tid}\td\tpull\t{utcnow().isoformat()}\n" for u in uids]
        bulk_pg.copy_text(s, bulk_pg.MEMBERSHIPS, bulk_pg._MEMBER_COLS_BY_USER, lines)

    return pg_fk.copy_checked(s, copy, rows=len(uids), user_ids=set(uids), team_ids={tid})


def _members(engine: Engine, tid: str) -> list[str]:
    with engine.connect() as c:
        q = text("SELECT user_id FROM memberships WHERE team_id = :t ORDER BY user_id")
        return list(c.execute(q, {"t": tid}).scalars())


def test_a_superuser_copies_without_row_triggers_and_ends_in_origin(pg: Engine) -> None:
    tid, uids = _team_and_users(pg)
    seen: list[str] = []
    with session_scope(pg) as s:
        assert pg_fk.blocker(s) is None
        assert _copy(s, tid, uids, seen) == "statement"
        assert seen == ["replica"]
        assert s.execute(text("SHOW session_replication_role")).scalar_one() == "origin"
    assert _members(pg, tid) == sorted(uids)


def test_a_small_copy_keeps_the_row_checks(pg: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    tid, uids = _team_and_users(pg)
    monkeypatch.setattr(pg_fk, "MIN_ROWS", len(uids) + 1)
    seen: list[str] = []
    with session_scope(pg) as s:
        assert _copy(s, tid, uids, seen) == "row"
    assert seen == ["origin"]
    assert _members(pg, tid) == sorted(uids)


def test_a_missing_user_takes_the_row_path_and_its_foreign_key_violation(pg: Engine) -> None:
    tid, uids = _team_and_users(pg)
    seen: list[str] = []
    with session_scope(pg) as s, pytest.raises(IntegrityError) as err:
        _copy(s, tid, [*uids, "no-such-user"], seen)
    assert getattr(err.value.orig, "sqlstate", None) == "23503"
    assert seen == ["origin"]
    assert _members(pg, tid) == []


def test_the_locks_hold_a_concurrent_delete_until_commit(pg: Engine) -> None:
    tid, uids = _team_and_users(pg)
    other = create_engine(pg.url)
    try:
        with session_scope(pg) as s:
            assert _copy(s, tid, uids, []) == "statement"
            with other.connect() as c, pytest.raises(OperationalError) as err:
                c.execute(text("SET lock_timeout = '200ms'"))
                c.execute(text("DELETE FROM users WHERE id = :u"), {"u": uids[0]})
            assert getattr(err.value.orig, "sqlstate", None) == "55P03"  # lock_not_available
        with other.begin() as c:  # after commit: the delete goes through and cascades
            c.execute(text("DELETE FROM users WHERE id = :u"), {"u": uids[0]})
    finally:
        other.dispose()
    assert _members(pg, tid) == sorted(uids[1:])


def test_a_trigger_of_the_tables_own_keeps_the_row_checks_and_fires(pg: Engine) -> None:
    tid, uids = _team_and_users(pg)
    with session_scope(pg) as s:
        s.execute(text("CREATE TABLE seen (user_id varchar(64))"))
        s.execute(
            text(
                "CREATE FUNCTION note_member() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN INSERT INTO seen VALUES (NEW.user_id); RETURN NEW; END $$"
            )
        )
        s.execute(
            text(
                "CREATE TRIGGER note AFTER INSERT ON memberships FOR EACH ROW EXECUTE FUNCTION note_member()"
            )
        )
    seen: list[str] = []
    with session_scope(pg) as s:
        assert "triggers besides its foreign keys'" in (pg_fk.blocker(s) or "")
        assert _copy(s, tid, uids, seen) == "row"
        assert s.execute(text("SELECT count(*) FROM seen")).scalar_one() == len(uids)
    assert seen == ["origin"]


def test_a_deferrable_key_keeps_the_row_checks_and_is_enforced(pg: Engine) -> None:
    # its uniqueness check is an internal trigger that replica mode would skip
    tid, uids = _team_and_users(pg)
    with session_scope(pg) as s:
        s.execute(
            text("ALTER TABLE memberships ADD CONSTRAINT one_source UNIQUE (team_id, source) DEFERRABLE")
        )
    with session_scope(pg) as s:
        assert "a deferrable key's" in (pg_fk.blocker(s) or "")
    with session_scope(pg) as s, pytest.raises(IntegrityError) as err:
        _copy(s, tid, uids, [])
    assert getattr(err.value.orig, "sqlstate", None) == "23505"
    assert _members(pg, tid) == []


def test_another_foreign_key_keeps_the_row_checks(pg: Engine) -> None:
    tid, uids = _team_and_users(pg)
    with session_scope(pg) as s:
        fk = "FOREIGN KEY (directory) REFERENCES directories(name)"
        s.execute(text(f"ALTER TABLE memberships ADD CONSTRAINT m_dir {fk}"))
    with session_scope(pg) as s:
        assert "foreign keys other than" in (pg_fk.blocker(s) or "")
        assert _copy(s, tid, uids, []) == "row"
    assert _members(pg, tid) == sorted(uids)


def test_a_role_without_the_grant_keeps_the_row_checks_and_says_why_once(
    pg: Engine, plain_role: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(pg_fk, "_told", False)
    tid, uids = _team_and_users(pg)
    other, _ = _team_and_users(pg, 0, "ops")
    seen: list[str] = []
    with caplog.at_level("INFO", logger="syncd.service.pg_fk"), session_scope(pg) as s:
        s.execute(text(f'SET LOCAL ROLE "{plain_role}"'))
        assert "may not set session_replication_role" in (pg_fk.blocker(s) or "")
        assert _copy(s, tid, uids, seen) == "row"
        assert _copy(s, other, uids, seen) == "row"
    assert seen == ["origin", "origin"]
    assert _members(pg, tid) == _members(pg, other) == sorted(uids)
    told = [r.getMessage() for r in caplog.records if r.name == "syncd.service.pg_fk"]
    assert len(told) == 1 and "per row" in told[0] and "may not set session_replication_role" in told[0]


def test_a_role_that_may_not_lock_users_keeps_the_row_checks(pg: Engine, plain_role: str) -> None:
    tid, uids = _team_and_users(pg)
    with pg.begin() as c:
        c.execute(text(f'REVOKE UPDATE ON users FROM "{plain_role}"'))
    with session_scope(pg) as s:
        s.execute(text(f'SET LOCAL ROLE "{plain_role}"'))
        # without the parameter granted either, that is what it names first
        assert "may not set session_replication_role" in (pg_fk.blocker(s) or "")
    if _server_version(pg) >= 150000:  # with the parameter granted, the lock is what is missing
        with pg.begin() as c:
            c.execute(text(f'GRANT SET ON PARAMETER session_replication_role TO "{plain_role}"'))
        with session_scope(pg) as s:
            s.execute(text(f'SET LOCAL ROLE "{plain_role}"'))
            assert "may not lock rows of users and teams" in (pg_fk.blocker(s) or "")
            assert _copy(s, tid, uids, []) == "row"
        assert _members(pg, tid) == sorted(uids)


def test_a_refused_set_falls_back_to_the_row_checks(
    pg: Engine, plain_role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a grant revoked between the check and the SET: the SET fails (42501), the COPY goes on
    monkeypatch.setattr(pg_fk, "blocker", lambda _s: None)
    tid, uids = _team_and_users(pg)
    seen: list[str] = []
    with session_scope(pg) as s:
        s.execute(text(f'SET LOCAL ROLE "{plain_role}"'))
        assert _copy(s, tid, uids, seen) == "row"
    assert seen == ["origin"]
    assert _members(pg, tid) == sorted(uids)


def test_a_role_granted_set_on_the_parameter_checks_per_statement(pg: Engine, plain_role: str) -> None:
    if _server_version(pg) < 150000:
        pytest.skip("GRANT SET ON PARAMETER is PostgreSQL 15+")
    with pg.begin() as c:
        c.execute(text(f'GRANT SET ON PARAMETER session_replication_role TO "{plain_role}"'))
    tid, uids = _team_and_users(pg)
    seen: list[str] = []
    with session_scope(pg) as s:
        s.execute(text(f'SET LOCAL ROLE "{plain_role}"'))
        assert pg_fk.blocker(s) is None
        assert _copy(s, tid, uids, seen) == "statement"
        assert s.execute(text("SHOW session_replication_role")).scalar_one() == "origin"
    assert seen == ["replica"]
    assert _members(pg, tid) == sorted(uids)


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths `copy_checked` takes from now on, in order."""
    paths: list[str] = []
    real = pg_fk.copy_checked

    def spy(*a: Any, **kw: Any) -> pg_fk.Path:
        paths.append(real(*a, **kw))
        return paths[-1]

    monkeypatch.setattr(pg_fk, "copy_checked", spy)
    return paths


def test_a_pulls_new_teams_take_the_statement_path_with_the_same_rows(
    pg: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _spy(monkeypatch)
    tid, uids = _team_and_users(pg, 5)
    with session_scope(pg) as s:
        assert pg_fk.eligible(s)
        got = bulk.add_memberships(s, actor=ACTOR, pairs=[(tid, u) for u in uids])
    assert paths == ["statement"]
    assert got == {tid: uids}
    assert _members(pg, tid) == sorted(uids)
    with pg.connect() as c:
        count, version = c.execute(
            text("SELECT member_count, version FROM teams WHERE id = :t"), {"t": tid}
        ).one()
    assert (count, version) == (5, 2)


def test_db_status_says_how_bulk_foreign_keys_are_checked(
    pg: Engine, plain_role: str, tmp_path: Path
) -> None:
    from tests.cli.conftest import Cli, write_config

    url = pg.url.render_as_string(hide_password=False)
    assert Cli(write_config(tmp_path / "a.toml", url=url)).json("db", "status")["bulk_fk_checks"] == (
        "per statement"
    )
    as_plain = pg.url.set(username=plain_role).render_as_string(hide_password=False)
    with create_engine(PG_URL).begin() as c:
        c.execute(text(f'ALTER ROLE "{plain_role}" LOGIN'))
    result = Cli(write_config(tmp_path / "b.toml", url=as_plain))("db", "status")
    assert result.exit_code == 0, result.output
    shown = " ".join(result.stdout.split())
    assert "per row: a large first pull loads its memberships about twice as slowly" in shown
    assert "may not set session_replication_role" in shown


def test_a_copy_lost_to_a_concurrent_writer_on_the_statement_path_ends_in_origin(
    pg: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    tid, uids = _team_and_users(pg, 4)
    # a concurrent writer's membership of the new team (its count bump left out, as in
    # test_bulk_pg): the COPY fails on the primary key and the ON CONFLICT path takes over
    with pg.begin() as c:
        c.execute(
            text("INSERT INTO memberships VALUES (:t, :u, 'd', 'login', now(), NULL)"),
            {"t": tid, "u": uids[0]},
        )
    seen: list[str] = []
    real = pg_fk.copy_checked

    def spy(s: Session, copy: Any, **kw: Any) -> pg_fk.Path:
        def watched() -> None:
            seen.append(s.execute(text("SHOW session_replication_role")).scalar_one())
            copy()

        return real(s, watched, **kw)

    monkeypatch.setattr(pg_fk, "copy_checked", spy)
    with session_scope(pg) as s:
        got = bulk.add_memberships(s, actor=ACTOR, pairs=[(tid, u) for u in uids])
        assert s.execute(text("SHOW session_replication_role")).scalar_one() == "origin"
    assert seen == ["replica"]
    assert got == {tid: uids[1:]}
    assert _members(pg, tid) == sorted(uids)
