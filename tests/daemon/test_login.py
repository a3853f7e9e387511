"""On-login sync against the fake Graph tenant, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from syncd.daemon.login import LoginService, PushOnly, UnknownDirectory
from syncd.daemon.metrics import Metrics
from syncd.service import teams as team_ops
from syncd.service.context import Actor
from syncd.store import session_scope
from syncd.store.models import Membership, Team, User
from tests.daemon.conftest import Env, settings_for
from tests.daemon.helpers import counts_consistent


@pytest.fixture
def service(env: Env) -> Iterator[LoginService]:
    svc = LoginService(env.engine, lambda: env.settings, metrics=Metrics())
    yield svc
    svc.close()


def member_user(env: Env) -> Any:
    """A tenant user that is in at least two groups."""
    t = env.fake.tenant
    return next(u for u in t.users.values() if len(t.transitive_group_ids(u.id)) >= 2)


def stored_teams(env: Env, user_external_id: str) -> dict[str, str]:
    """external id → source of the user's memberships in directory entra."""
    with session_scope(env.engine, write=False) as s:
        q = (
            select(Team.external_id, Membership.source)
            .join(Membership, Membership.team_id == Team.id)
            .join(User, User.id == Membership.user_id)
            .where(User.external_id == user_external_id, Team.directory == "entra")
        )
        return dict(s.execute(q).tuples().all())


def idp_groups(env: Env, user_id: str) -> set[str]:
    return {env.fake.external_id(g) for g in env.fake.tenant.transitive_group_ids(user_id)}


def test_first_login_creates_the_user_its_teams_and_memberships(env: Env, service: LoginService) -> None:
    user = member_user(env)
    r = service.sync("entra", user.user_name)
    assert r.found and not r.stale, r.error
    want = idp_groups(env, user.id)
    assert set(stored_teams(env, env.fake.external_id(user.id))) == want
    assert {t["external_id"] for t in r.teams} == want
    assert {t["external_id"] for t in r.created_teams} == want
    assert {t["external_id"] for t in r.added} == want and r.removed == []
    assert counts_consistent(env.engine) == []


def test_a_group_change_in_the_idp_is_matched_by_one_login(env: Env, service: LoginService) -> None:
    user = member_user(env)
    t = env.fake.tenant
    assert service.sync("entra", user.id).found
    direct = next(g for g in t.groups.values() if user.id in g.user_ids)
    t.remove_member(direct.id, user.id)
    new_group = t.add_group("joined-today")
    t.add_member(new_group.id, user.id)

    r = service.sync("entra", user.user_name.upper())  # userName, in another case

    ext = env.fake.external_id
    assert set(stored_teams(env, ext(user.id))) == idp_groups(env, user.id)
    assert ext(new_group.id) in {x["external_id"] for x in r.added}
    assert ext(new_group.id) in {x["external_id"] for x in r.created_teams}
    if ext(direct.id) not in idp_groups(env, user.id):  # not still a member through nesting
        assert ext(direct.id) in {x["external_id"] for x in r.removed}
    assert counts_consistent(env.engine) == []


def test_a_manual_membership_survives_a_login(env: Env, service: LoginService) -> None:
    user = member_user(env)
    service.sync("entra", user.id)
    t = env.fake.tenant
    outside = next(g for g in t.groups.values() if g.id not in t.transitive_group_ids(user.id))
    outside_ext = env.fake.external_id(outside.id)
    with session_scope(env.engine) as s:
        actor = Actor("manual", "entra", "admin")
        team = team_ops.create_team(
            s, actor=actor, body={"displayName": "hand-made", "externalId": outside_ext}
        )
        uid = s.execute(select(User.id).where(User.external_id == env.fake.external_id(user.id))).scalar_one()
        team_ops.change_members(s, actor=actor, team_id=team.id, add=[uid])

    r = service.sync("entra", user.id)

    assert stored_teams(env, env.fake.external_id(user.id))[outside_ext] == "manual"
    assert r.removed == []


def test_an_idp_failure_answers_stored_teams_stale_and_removes_nothing(
    env: Env, service: LoginService
) -> None:
    user = member_user(env)
    service.sync("entra", user.id)
    before = stored_teams(env, env.fake.external_id(user.id))
    t = env.fake.tenant
    for gid in list(t.transitive_group_ids(user.id)):
        t.remove_member(gid, user.id)  # the IdP now says: no groups, but it will fail to say so
    env.fakes.faults["entra"].add("error", status=503, times=None)

    r = service.sync("entra", user.user_name)

    assert r.stale and r.error
    assert stored_teams(env, env.fake.external_id(user.id)) == before
    assert {x["external_id"] for x in r.teams} == set(before)
    assert r.added == r.removed == []


def test_an_idp_slower_than_the_budget_answers_stale(env: Env, service: LoginService) -> None:
    user = member_user(env)
    service.sync("entra", user.id)
    before = stored_teams(env, env.fake.external_id(user.id))
    env.fake.tenant.remove_member(next(iter(env.fake.tenant.transitive_group_ids(user.id))), user.id)
    env.fakes.faults["entra"].add("timeout", delay=20, times=None)  # budget is 3 s

    r = service.sync("entra", user.id)

    assert r.stale and "budget" in (r.error or "")
    assert stored_teams(env, env.fake.external_id(user.id)) == before


def test_a_stale_answer_for_a_user_never_synced_is_empty(env: Env, service: LoginService) -> None:
    env.fakes.faults["entra"].add("error", status=503, times=None)
    r = service.sync("entra", member_user(env).user_name)
    assert r.stale and r.user is None and r.teams == []


def test_concurrent_logins_of_one_user_end_consistent(env: Env, service: LoginService) -> None:
    user = member_user(env)
    results: list[Any] = []
    errors: list[BaseException] = []

    def login() -> None:
        try:
            results.append(service.sync("entra", user.user_name))
        except BaseException as exc:
            errors.append(exc)

    other = LoginService(env.engine, lambda: env.settings)  # a second replica's service
    try:
        threads = [threading.Thread(target=login) for _ in range(3)]
        threads.append(threading.Thread(target=lambda: results.append(other.sync("entra", user.id))))
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        other.close()
    assert errors == [] and all(r.found and not r.stale for r in results)
    assert set(stored_teams(env, env.fake.external_id(user.id))) == idp_groups(env, user.id)
    created = [x["external_id"] for r in results for x in r.created_teams]
    assert sorted(created) == sorted(idp_groups(env, user.id))  # each team created once
    with session_scope(env.engine, write=False) as s:
        assert s.execute(select(func.count()).select_from(User)).scalar_one() == 1
    assert counts_consistent(env.engine) == []


def test_scope_rules_decide_which_teams_a_login_creates(env: Env) -> None:
    user = member_user(env)
    groups = sorted(env.fake.tenant.transitive_group_ids(user.id))
    excluded = env.fake.tenant.groups[groups[0]].name
    toml = env.fakes.toml + f'\n[directories.entra.scope]\nexclude_groups = ["{excluded}"]\n'
    settings = settings_for(env.engine, env.tmp, toml)
    svc = LoginService(env.engine, lambda: settings)
    try:
        r = svc.sync("entra", user.id)
    finally:
        svc.close()
    assert excluded not in {x["display_name"] for x in r.teams}
    assert set(stored_teams(env, env.fake.external_id(user.id))) == idp_groups(env, user.id) - {
        env.fake.external_id(groups[0])
    }


def test_a_user_the_idp_does_not_know_changes_nothing(env: Env, service: LoginService) -> None:
    r = service.sync("entra", "nobody@entra.example")
    assert not r.found and not r.stale
    with session_scope(env.engine, write=False) as s:
        assert s.execute(select(func.count()).select_from(User)).scalar_one() == 0


def test_unknown_and_push_only_directories_are_refused(env: Env, service: LoginService) -> None:
    with pytest.raises(UnknownDirectory):
        service.sync("nope", "x")
    settings = settings_for(env.engine, env.tmp, env.fakes.toml + '\n[directories.push]\nkind = "scim"\n')
    svc = LoginService(env.engine, lambda: settings)
    try:
        with pytest.raises(PushOnly):
            svc.sync("push", "x")
    finally:
        svc.close()


def test_a_user_name_held_by_another_stored_user_is_a_clear_409_not_a_crash(
    env: Env, service: LoginService
) -> None:
    """The IdP recreated the user (new object id) while the store still holds the old row with
    its userName: the login says so (409) and writes nothing."""
    from syncd.daemon.login import LoginError
    from syncd.service import tokens
    from syncd.service import users as user_ops

    user = member_user(env)
    with session_scope(env.engine) as s:
        tokens.ensure_directory(s, name="entra", kind="graph")
        user_ops.create_user(
            s, actor=Actor("pull", "entra", "entra"), body={"userName": user.user_name, "externalId": "old"}
        )
    with pytest.raises(LoginError) as err:
        service.sync("entra", user.id)
    assert err.value.status == 409 and user.user_name in str(err.value)
    assert stored_teams(env, env.fake.external_id(user.id)) == {}
    with session_scope(env.engine, write=False) as s:
        assert s.execute(select(func.count()).select_from(Team)).scalar_one() == 0


# -- a login removes only what its lookup can see (issue 9, defect 6) ---------------------------


class BlindConnector:
    """A connector whose lookup answers `groups` and declares `unseen` / `complete`."""

    kind = "graph"

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    async def user_groups(self, user: str) -> Any:
        return self.answer

    async def aclose(self) -> None:
        pass


def _stored(engine: Any, directory: str, user_ext: str) -> set[str]:
    with session_scope(engine, write=False) as s:
        q = (
            select(Team.external_id)
            .join(Membership, Membership.team_id == Team.id)
            .join(User, User.id == Membership.user_id)
            .where(User.external_id == user_ext, Team.directory == directory)
        )
        return set(s.execute(q).scalars())


@pytest.mark.parametrize("blind", ["unseen", "incomplete"])
def test_a_login_never_removes_a_membership_its_lookup_cannot_see(env: Env, blind: str) -> None:
    from syncd.reconcile.snapshot import SnapshotGroup, SnapshotUser, UserGroups

    user = SnapshotUser(external_id="u-1", user_name="ann@entra.example")
    groups = (SnapshotGroup("g-a", "alpha"), SnapshotGroup("g-b", "beta"), SnapshotGroup("g-c", "gamma"))
    full = UserGroups("entra", user, groups)
    first = LoginService(
        env.engine, lambda: env.settings, connector_factory=lambda *a, **k: BlindConnector(full)
    )
    try:
        assert first.sync("entra", "ann@entra.example").found
    finally:
        first.close()
    assert _stored(env.engine, "entra", "u-1") == {"g-a", "g-b", "g-c"}

    # the IdP now returns only alpha; beta is a group the lookup cannot see (or it sees nothing)
    kw: dict[str, Any] = {"unseen": frozenset({"g-b"})} if blind == "unseen" else {"complete": False}
    answer = UserGroups("entra", user, groups[:1], notes=("why",), **kw)
    svc = LoginService(
        env.engine, lambda: env.settings, connector_factory=lambda *a, **k: BlindConnector(answer)
    )
    try:
        r = svc.sync("entra", "ann@entra.example")
    finally:
        svc.close()
    removed = {x["external_id"] for x in r.removed}
    if blind == "unseen":
        assert removed == {"g-c"}  # seen and gone: removed
        assert _stored(env.engine, "entra", "u-1") == {"g-a", "g-b"}
    else:
        assert removed == set()
        assert _stored(env.engine, "entra", "u-1") == {"g-a", "g-b", "g-c"}
    assert "why" in r.notes


def test_google_login_keeps_and_adds_whole_customer_groups(engine: Any, tmp_path: Any) -> None:
    """ "All staff" has the whole customer as a member (expanded to every user by the pull).
    A login must not take a user out of it, and must put a user new to the store in it."""
    from contextlib import ExitStack

    from connectors.factory import build_connector
    from syncd.reconcile.options import run_options
    from syncd.reconcile.run import run_sync
    from tests.daemon.helpers import start_fakes

    with ExitStack() as stack:
        fakes = start_fakes(stack, tmp_path, {"gws": "google"}, schedule="1h")
        fake = fakes.fakes["gws"]
        t = fake.tenant
        staff = t.add_group("All staff")
        fake.customer_members.add(staff.id)
        settings = settings_for(engine, tmp_path, fakes.toml)
        d = settings.directories["gws"]
        pulled = run_sync(engine, build_connector("gws", d), run_options(d, lock_dir=tmp_path))
        assert pulled.outcome == "applied", pulled.error
        x = fake.external_id
        user = next(u for u in t.users.values() if t.parent_group_ids(u.id))
        assert x(staff.id) in _stored(engine, "gws", x(user.id))
        newbie = t.add_user("newbie@gws.example")

        svc = LoginService(engine, lambda: settings)
        try:
            r = svc.sync("gws", user.user_name)
            fresh = svc.sync("gws", newbie.user_name)
        finally:
            svc.close()

        assert r.found and not r.stale, r.error
        assert x(staff.id) not in {t_["external_id"] for t_ in r.removed}
        assert _stored(engine, "gws", x(user.id)) == {x(g) for g in t.transitive_group_ids(user.id)} | {
            x(staff.id)
        }
        assert fresh.found and x(staff.id) in {t_["external_id"] for t_ in fresh.added}


def test_close_cancels_what_still_runs_on_the_login_loop(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    import asyncio
    import gc

    svc = LoginService(env.engine, lambda: env.settings, metrics=Metrics())
    stuck = asyncio.run_coroutine_threadsafe(asyncio.sleep(3600), svc._loop)  # a fetch past its budget
    with caplog.at_level("ERROR", logger="asyncio"):
        svc.close()
        gc.collect()
    assert stuck.cancelled()
    assert svc._loop.is_closed()
    assert not [r for r in caplog.records if "destroyed but it is pending" in r.getMessage()]
