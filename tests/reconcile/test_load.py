"""load_view against a real store (SQLite and PostgreSQL): the view equals the one read row by
row through the ORM, whatever the memberships hold (manual ones, members without an external
id, other directories, a user id holding the separator the per-team read joins ids with)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select

from syncd.reconcile import load
from syncd.reconcile.diff import diff
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


def test_a_team_equal_to_its_expected_group_holds_the_groups_own_set(eng: Engine) -> None:  # noqa: F811
    """With `expect`, the view is equal to the one without; only teams whose members are exactly
    their group's hold the group's `member_ids` object, and the diff of any snapshot is the same."""
    sync(eng, snap(*BASE))
    pushed = Actor("scim", D, "token")
    now = datetime.now(UTC)
    with session_scope(eng) as s:
        g4 = teams.create_team(s, actor=pushed, body={"displayName": "Odd", "externalId": "g4"})
        g5 = teams.create_team(s, actor=pushed, body={"displayName": "Loose", "externalId": "g5"})
        odd = User(
            id=f"odd{load.SEP}id", directory=D, external_id="u-odd", user_name="odd@x", user_name_key="odd@x"
        )
        loose = users.create_user(s, actor=pushed, body={"userName": "loose@x"})  # no externalId
        s.add(odd)
        s.flush()
        s.add(Membership(team_id=g4.id, user_id=odd.id, directory=D, source="pull", created_at=now))
        s.add(Membership(team_id=g5.id, user_id=loose.id, directory=D, source="pull", created_at=now))
        g1 = s.execute(select(Team.id).where(Team.external_id == "g1")).scalar_one()
        teams.change_members(s, actor=Actor("manual", D, "cli"), team_id=g1, add=[loose.id])
    user_list, groups = BASE
    cases = {
        "same": groups,
        "one member more": {**groups, "g1": ("Eng", {"u0", "u1", "u2", "u3"})},
        "one member less": {**groups, "g2": ("Ops", {"u2"})},
        "one swapped": {**groups, "g2": ("Ops", {"u2", "u4"})},
        "a member not stored": {**groups, "g1": ("Eng", {"u0", "u1", "u-new"})},
        "the separator's user": {**groups, "g4": ("Odd", {"u-odd"})},
        "a member without externalId": {**groups, "g5": ("Loose", set())},
    }
    for name, gs in cases.items():
        expected = snap(user_list, gs)
        with session_scope(eng, write=False) as s:
            plain = load_view(s, D)
            given = load_view(s, D, expect=expected.groups)
        assert given == plain, name
        same = {te for te, m in given.members.items() if te in gs and m is expected.groups[te].member_ids}
        want = {te for te, m in plain.members.items() if te in gs and m == set(gs[te][1]) and te != "g4"}
        assert same == want, name
        assert diff(expected, given) == diff(expected, plain), name
    with session_scope(eng, write=False) as s:
        same = load_view(s, D, expect=snap(user_list, groups).groups)
    assert {te for te, m in same.members.items() if isinstance(m, frozenset)} == {"g1", "g2"}


def test_users_read_the_same_whether_the_directory_holds_most_users_or_few(eng: Engine) -> None:  # noqa: F811
    """SQLite scans the users table for a directory that holds most of them, else goes through
    the directory index: both give the directory's users and only them."""
    sync(eng, snap(*BASE))
    okta = Actor("scim", "okta", "token")
    with session_scope(eng) as s:
        for i in range(20):
            users.create_user(s, actor=okta, body={"userName": f"o{i}@x", "externalId": f"o{i}"})
    for directory, most in ((D, False), ("okta", True)):
        with session_scope(eng, write=False) as s:
            assert load._most_users(s.connection(), directory) is (most and eng.dialect.name == "sqlite")
            view = load_view(s, directory)
            rows = s.execute(select(User).where(User.directory == directory)).scalars().all()
        assert {e: (u.id, u.user_name) for e, u in view.users.items()} == {
            u.external_id: (u.id, u.user_name) for u in rows
        }
