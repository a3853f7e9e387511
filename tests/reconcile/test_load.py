"""load_view against a real store (SQLite and PostgreSQL): the view equals the one read row by
row through the ORM, whatever the memberships hold (manual ones, members without an external
id, other directories, a user id holding the separator the per-team read joins ids with)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select

from syncd.reconcile import load
from syncd.reconcile.load import load_view
from syncd.reconcile.view import StoreView
from syncd.service import teams, users
from syncd.service.context import Actor
from syncd.store import session_scope
from syncd.store.models import Membership, Team, User
from tests.reconcile.test_apply import BASE, D, eng, snap, sync  # noqa: F401  (eng: fixture)


def reference(engine: Engine, directory: str) -> StoreView:
    """The members of the view, read one ORM row at a time (what load_view must equal)."""
    view = StoreView()
    with session_scope(engine, write=False) as s:
        uext = {u.id: u.external_id for u in s.execute(select(User)).scalars()}
        text = {t.id: t.external_id for t in s.execute(select(Team)).scalars()}
        for m in s.execute(select(Membership).where(Membership.directory == directory)).scalars():
            te, ue = text.get(m.team_id), uext.get(m.user_id)
            if te is None or ue is None:
                continue
            (view.manual if m.source == "manual" else view.members).setdefault(te, set()).add(ue)
    return view


def test_members_match_a_row_by_row_read(eng: Engine) -> None:  # noqa: F811
    sync(eng, snap(*BASE))
    manual = Actor("manual", D, "cli")
    pushed = Actor("scim", D, "token")
    now = datetime.now(UTC)
    with session_scope(eng) as s:
        ids = dict(s.execute(select(User.external_id, User.id).where(User.directory == D)).tuples().all())
        g1 = s.execute(select(Team.id).where(Team.external_id == "g1")).scalar_one()
        g2 = s.execute(select(Team.id).where(Team.external_id == "g2")).scalar_one()
        teams.change_members(s, actor=manual, team_id=g1, add=[ids["u5"]])
        loose = users.create_user(s, actor=pushed, body={"userName": "loose@x"})  # no externalId
        teams.change_members(s, actor=pushed, team_id=g1, add=[loose.id])
        odd = User(
            id=f"odd{load.SEP}id", directory=D, external_id="u-odd", user_name="odd@x", user_name_key="odd@x"
        )
        s.add(odd)
        s.flush()
        s.add(Membership(team_id=g2, user_id=odd.id, directory=D, source="pull", created_at=now))
    with session_scope(eng, write=False) as s:
        view = load_view(s, D)
    want = reference(eng, D)
    assert view.members == want.members
    assert view.manual == want.manual == {"g1": {"u5"}}
    assert view.members["g1"] == {"u0", "u1", "u2"}  # the member without an external id is not the pull's
    assert view.members["g2"] == {"u2", "u3", "u-odd"}  # re-read row by row
    assert "g3" not in view.members
    assert view.users["u-odd"].id == f"odd{load.SEP}id" and view.users["u0"].active is True
    assert view.unmanaged_user_names == {"loose@x"}


def test_a_directory_without_rows_loads_empty(eng: Engine) -> None:  # noqa: F811
    with session_scope(eng, write=False) as s:
        assert load_view(s, D) == StoreView()


def test_a_users_email_is_its_primary_one_else_its_first(eng: Engine) -> None:  # noqa: F811
    pushed = Actor("scim", D, "token")
    emails = {
        "u-p": [{"value": "a@x"}, {"value": "b@x", "primary": True}, {"value": "c@x"}],
        "u-f": [{"value": "d@x"}, {"value": "e@x"}],
        "u-n": [],
    }
    with session_scope(eng) as s:
        for ext, mails in emails.items():
            users.create_user(
                s, actor=pushed, body={"userName": f"{ext}@x", "externalId": ext, "emails": mails}
            )
    with session_scope(eng, write=False) as s:
        view = load_view(s, D)
    assert {ext: u.email for ext, u in view.users.items()} == {"u-p": "b@x", "u-f": "d@x", "u-n": None}


def test_the_grouping_settings_are_put_back(eng: Engine) -> None:  # noqa: F811
    sync(eng, snap(*BASE))
    with session_scope(eng, write=False) as s:
        if eng.dialect.name != "postgresql":
            return
        get = "SELECT current_setting('work_mem'), current_setting('enable_sort')"
        before = s.connection().exec_driver_sql(get).one()
        assert load_view(s, D).members
        assert s.connection().exec_driver_sql(get).one() == before
