"""Migration 0004 repairs a store that took a U+0000 before the service refused it (on
PostgreSQL it made every JSON filter of the directory fail), on both stores."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine, insert

from syncd.service import users
from syncd.service.context import Actor
from syncd.store import session_scope
from syncd.store.engine import _alembic_config, upgrade
from syncd.store.models import Directory, User, utcnow

ACTOR = Actor("scim", "old", "t")


def test_upgrade_scrubs_nul_from_stored_attributes_and_filters_work_again(engine: Engine) -> None:
    command.downgrade(_alembic_config(engine), "0001")
    now = utcnow()
    row = {
        "id": "u1",
        "directory": "old",
        "user_name": "a@x",
        "user_name_key": "a@x",
        "active": True,
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "data": {"userName": "a@x", "title": "a\x00b", "name": {"givenName": "G\x00"}},
    }
    with engine.begin() as c:
        c.execute(insert(Directory.__table__).values(name="old", kind="scim", created_at=now))
        c.execute(insert(User.__table__).values(**row))
    upgrade(engine)
    with session_scope(engine, write=False) as s:
        assert users.get_user(s, actor=ACTOR, user_id="u1").data["title"] == "ab"
        assert users.list_users(s, actor=ACTOR, filter='title eq "ab"').total == 1
    with session_scope(engine) as s:  # the row can be patched again: nothing refused remains
        users.patch_user(
            s, actor=ACTOR, user_id="u1", operations=[{"op": "replace", "path": "nickName", "value": "n"}]
        )
