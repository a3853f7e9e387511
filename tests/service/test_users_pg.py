"""`syncd.service.users_pg` (POST /Users on PostgreSQL as one statement): it writes, as stored
text, the rows `users.create_user` writes (user, emails, audit event, change with the
transaction's xid), returns the same User, refuses a taken userName/externalId with the same
Conflict (and then writes nothing), and turns a refused value into the same error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DataError

from syncd.service import tokens, users, users_pg
from syncd.service.context import Actor
from syncd.service.errors import Conflict
from syncd.store import session_scope
from tests.conftest import migrated_store
from tests.service.test_bulk_pg import AUDIT_TEXT, BODIES, CHANGE_TEXT, EMAIL_TEXT, USER_TEXT, raw

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Engine]:
    with migrated_store("postgres", tmp_path) as eng:
        with session_scope(eng) as s:
            for d in ("one", "row"):
                tokens.ensure_directory(s, name=d, kind="scim")
        yield eng


def actor(directory: str) -> Actor:
    return Actor("scim", directory, f"token:{directory}")


def _one(engine: Engine, body: dict[str, Any], directory: str = "one") -> Any:
    with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        return users_pg.create_user(conn, actor=actor(directory), body=body)


def test_one_statement_writes_the_row_paths_rows_as_stored_text(pg: Engine) -> None:
    made = [_one(pg, b) for b in BODIES]
    with session_scope(pg) as s:
        want = [users.create_user(s, actor=actor("row"), body=b) for b in BODIES]
    for sql in (USER_TEXT, EMAIL_TEXT, AUDIT_TEXT, CHANGE_TEXT):
        got, expected = raw(pg, sql, "one"), raw(pg, sql, "row")
        assert got == expected and got, sql
    for a, b in zip(made, want, strict=True):
        assert (a.data, a.version, a.user_name, a.external_id) == (
            b.data,
            b.version,
            b.user_name,
            b.external_id,
        )
    # each create is its own transaction: its change carries that transaction's xid, and the
    # audit event and change rows name the created user
    xids = raw(pg, "SELECT DISTINCT xid FROM changes WHERE directory = :d", "one")
    assert len(xids) == len(BODIES)
    ids = {r[0] for r in raw(pg, "SELECT resource_id FROM changes WHERE directory = :d", "one")}
    assert ids == {u.id for u in made}
    audited = {r[0] for r in raw(pg, "SELECT resource_id FROM audit_events WHERE directory = :d", "one")}
    assert audited == ids


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"userName": "ANN@x"}, "userName 'ANN@x' is already taken"),
        ({"userName": "new@x", "externalId": "e-ann"}, "externalId 'e-ann' is already taken"),
    ],
)
def test_a_taken_attribute_is_a_conflict_that_writes_nothing(
    pg: Engine, body: dict[str, Any], message: str
) -> None:
    _one(pg, {"userName": "ann@x", "externalId": "e-ann", "emails": [{"value": "ann@x"}]})
    before = [raw(pg, sql, "one") for sql in (USER_TEXT, EMAIL_TEXT, AUDIT_TEXT, CHANGE_TEXT)]
    with pytest.raises(Conflict) as got:
        _one(pg, {**body, "emails": [{"value": "other@x"}]})
    with pytest.raises(Conflict) as want, session_scope(pg) as s:
        users.create_user(s, actor=actor("one"), body=body)
    assert str(got.value) == str(want.value) == message
    assert [raw(pg, sql, "one") for sql in (USER_TEXT, EMAIL_TEXT, AUDIT_TEXT, CHANGE_TEXT)] == before


def test_a_value_the_store_refuses_is_the_same_error_and_writes_nothing(pg: Engine) -> None:
    # an actor label longer than the audit column: no silent cut by a cast, the column refuses it
    long = Actor("scim", "one", "token:" + "t" * 300)
    with pytest.raises(DataError), pg.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        users_pg.create_user(conn, actor=long, body={"userName": "long@x"})
    with pytest.raises(DataError), session_scope(pg) as s:
        users.create_user(s, actor=long, body={"userName": "long@x"})
    with pg.connect() as c:
        assert c.execute(text("SELECT count(*) FROM users")).scalar_one() == 0
        assert c.execute(text("SELECT count(*) FROM changes")).scalar_one() == 0
