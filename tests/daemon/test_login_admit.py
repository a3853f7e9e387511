"""On-login sync with hostile IdP names: cleaned, or noted and not created; never a crash
(SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from connectors.base import Connector
from syncd.daemon.login import LoginError, LoginService
from syncd.reconcile.snapshot import Snapshot, SnapshotGroup, SnapshotUser, UserGroups
from syncd.store import session_scope
from syncd.store.models import Team, User
from tests.daemon.conftest import Env


class Answer(Connector):
    kind = "graph"

    def __init__(self, directory: str, ug: UserGroups) -> None:
        super().__init__(directory)
        self.ug = ug

    async def snapshot(self, *, cursor: str | None = None, progress: Any = None) -> Snapshot:
        return Snapshot(self.directory)

    async def user_groups(self, user: str) -> UserGroups:
        return self.ug


def _login(env: Env, ug: UserGroups) -> Any:
    svc = LoginService(
        env.engine, lambda: env.settings, connector_factory=lambda name, d, **kw: Answer(name, ug)
    )
    try:
        return svc.sync("entra", "whoever")
    finally:
        svc.close()


def test_a_login_cleans_names_and_notes_what_it_cannot_create(env: Env) -> None:
    user = SnapshotUser("u1", "ada\x00@x", display_name="Ada\x1b[2J")
    groups = (SnapshotGroup("g1", "Eng\x00"), SnapshotGroup("g2", "ß" * 300))
    r = _login(env, UserGroups("entra", user, groups))
    assert r.found and r.error is None, r.to_dict()
    assert [t["display_name"] for t in r.teams] == ["Eng"]
    assert r.notes and "'g2' not created: displayName is 600 characters long" in r.notes[0]
    with session_scope(env.engine, write=False) as s:
        row = s.execute(select(User).where(User.directory == "entra")).scalars().one()
        assert (row.user_name, row.display_name) == ("ada@x", "Ada[2J")
        assert list(s.execute(select(Team.display_name).where(Team.directory == "entra")).scalars()) == [
            "Eng"
        ]


def test_a_login_of_a_user_beyond_the_limits_writes_nothing_and_says_why(env: Env) -> None:
    r = _login(env, UserGroups("entra", SnapshotUser("u1", "x" * 1_500_000), (SnapshotGroup("g1", "Eng"),)))
    assert r.found and r.user is None and r.teams == []
    assert r.notes == [
        "the user was not created: userName is 1500000 characters long; at most 512 are allowed"
    ]
    with session_scope(env.engine, write=False) as s:
        assert s.execute(select(User).where(User.directory == "entra")).first() is None
        assert s.execute(select(Team).where(Team.directory == "entra")).first() is None


class Down(Answer):
    async def user_groups(self, user: str) -> UserGroups:
        from connectors.base import ConnectorError

        raise ConnectorError("the IdP is down")


@pytest.mark.parametrize("user", ["ada\x00@x", "ada\x1b[2J@x", "a" * 600], ids=["nul", "esc", "long"])
def test_a_login_for_a_user_key_beyond_the_limits_is_refused_on_both_stores(env: Env, user: str) -> None:
    """The user key of a login (POST /v1/logins, `syncd login-sync`) meets the service's limits
    before a connector or a store sees it: a NUL made PostgreSQL's stale-answer lookup raise (a
    500 from the admin API), and a control character reached the IdP's query and the log."""
    svc = LoginService(
        env.engine,
        lambda: env.settings,
        connector_factory=lambda name, d, **kw: Down(name, UserGroups("entra", None)),
    )
    try:
        with pytest.raises(LoginError) as exc:
            svc.sync("entra", user)
    finally:
        svc.close()
    assert exc.value.status == 400
    assert "the user" in str(exc.value)


def test_a_login_naming_a_group_whose_id_the_store_cannot_hold_notes_it_and_adds_the_rest(env: Env) -> None:
    """A group external id with a control character is no team the store can hold: the login
    notes it and still adds the user's other groups (the lookup of the stored teams by those ids
    raised on PostgreSQL, which refuses a NUL: every login of that user failed with a 500)."""
    groups = (SnapshotGroup("g\x00", "Eng"), SnapshotGroup("g2", "Ops"))
    r = _login(env, UserGroups("entra", SnapshotUser("u1", "ada@x"), groups))
    assert r.found and r.error is None, r.to_dict()
    assert [t["display_name"] for t in r.teams] == ["Ops"]
    assert len(r.notes) == 1 and "externalId contains the control character U+0000" in r.notes[0], r.notes


def test_a_login_of_a_user_whose_id_the_store_cannot_hold_writes_nothing_and_says_why(env: Env) -> None:
    r = _login(env, UserGroups("entra", SnapshotUser("u\x00", "ada@x"), (SnapshotGroup("g2", "Ops"),)))
    assert r.found and r.user is None and r.teams == []
    assert len(r.notes) == 1 and "externalId contains the control character U+0000" in r.notes[0], r.notes
