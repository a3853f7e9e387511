"""Contract of `syncd.service.bulk`: each bulk operation leaves the store exactly as calling
its per-row counterpart once per item would, in one transaction — same rows, versions,
member counts, memberships, audit events and errors. Run on SQLite and PostgreSQL.

Each case runs twice in one store: per-row in directory "row", bulk in directory "bulk",
both seeded alike; then the two directories' contents are compared with ids replaced by
names. Directory "other" holds a user and a team no operation may touch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Engine, select

from syncd.service import bulk, common, keys, teams, tokens, users
from syncd.service.context import Actor
from syncd.service.errors import Conflict, InvalidValue, NotFound, ServiceError
from syncd.service.resource import normalize, require
from syncd.service.schema import GROUP, USER
from syncd.store import session_scope
from syncd.store.models import AuditEvent, Membership, Team, User, UserEmail

SEED_USERS = ("ann@x", "bob@x", "cid@x", "dee@x", "eve@x")
SEED_TEAMS = ("eng", "ops", "sales")
#: memberships made before each case: (team, user, feed)
SEED_MEMBERS = (("eng", "ann@x", "pull"), ("eng", "bob@x", "manual"), ("ops", "cid@x", "scim"))


def actor(directory: str, feed: str = "pull") -> Actor:
    return Actor(feed, directory, "x", sync_run_id=None)  # type: ignore[arg-type]


def ubody(user_name: str, /, **extra: Any) -> dict[str, Any]:
    return {"userName": user_name, "externalId": f"ext-{user_name}", **extra}


def seed(engine: Engine, directory: str) -> None:
    with session_scope(engine) as s:
        tokens.ensure_directory(s, name=directory, kind="graph")
    with session_scope(engine) as s:
        a = actor(directory)
        for i, n in enumerate(SEED_USERS):
            users.create_user(
                s, actor=a, body=ubody(n, active=i != 3, emails=[{"value": n, "primary": True}])
            )
        for n in SEED_TEAMS:
            teams.create_team(s, actor=a, body={"displayName": n, "externalId": f"ext-{n}"})
    with session_scope(engine) as s:
        for t, u, feed in SEED_MEMBERS:
            teams.change_members(
                s,
                actor=actor(directory, feed),
                team_id=_id(s, Team, directory, t),
                add=[_id(s, User, directory, u)],
            )


def _id(s: Any, model: Any, directory: str, name: str) -> str:
    """The id of a user (by userName) or team (by displayName), in `directory` or else "other"."""
    col = model.user_name if model is User else model.display_name
    for d in (directory, "other"):
        hit = s.execute(select(model.id).where(model.directory == d, col == name)).scalar()
        if hit is not None:
            return hit
    return f"missing-{name}"


@dataclass(frozen=True)
class Case:
    name: str
    op: str  # create_users | create_teams | set_active | add_memberships | remove_memberships | join_teams
    items: tuple[Any, ...]
    feed: str = "pull"
    active: bool = False
    error: type[ServiceError] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case(
        "create users with names, emails and active false",
        "create_users",
        (
            ubody("new1@x", name={"givenName": "N", "familyName": "One"}, displayName="N One"),
            ubody("new2@x", active=False, emails=[{"value": "n2@x", "type": "work", "primary": True}]),
            {"userName": "noext@x"},
        ),
    ),
    Case(
        "create users: userName taken (case-insensitive)",
        "create_users",
        (ubody("new@x"), ubody("ANN@x")),
        error=Conflict,
    ),
    Case(
        "create users: userName twice in the batch",
        "create_users",
        (ubody("new@x"), {"userName": "New@X"}),
        error=Conflict,
    ),
    Case(
        "create users: externalId taken",
        "create_users",
        ({"userName": "z@x", "externalId": "ext-bob@x"},),
        error=Conflict,
    ),
    Case(
        "create users: externalId twice in the batch",
        "create_users",
        ({"userName": "y@x", "externalId": "e"}, {"userName": "z@x", "externalId": "e"}),
        error=Conflict,
    ),
    Case("create users: userName of another directory is free", "create_users", (ubody("stranger@x"),)),
    Case("create users: userName missing", "create_users", ({"externalId": "e"},), error=InvalidValue),
    Case(
        "create teams",
        "create_teams",
        ({"displayName": "new", "externalId": "g-new"}, {"displayName": "bare"}),
    ),
    Case(
        "create teams: displayName taken",
        "create_teams",
        ({"displayName": "x"}, {"displayName": "ENG"}),
        error=Conflict,
    ),
    Case(
        "create teams: name twice in the batch",
        "create_teams",
        ({"displayName": "q"}, {"displayName": "Q"}),
        error=Conflict,
    ),
    Case(
        "create teams: externalId taken",
        "create_teams",
        ({"displayName": "q", "externalId": "ext-ops"},),
        error=Conflict,
    ),
    Case("deactivate: active users change, inactive ones do not", "set_active", ("ann@x", "dee@x", "bob@x")),
    Case("reactivate: only the inactive user changes", "set_active", ("dee@x", "ann@x"), active=True),
    Case("deactivate: user of another directory", "set_active", ("ann@x", "stranger@x"), error=NotFound),
    Case(
        "add members across teams; existing ones (manual too) unchanged; duplicates once",
        "add_memberships",
        (
            ("eng", "ann@x"),
            ("eng", "bob@x"),
            ("eng", "cid@x"),
            ("ops", "ann@x"),
            ("eng", "cid@x"),
            ("sales", "eve@x"),
        ),
    ),
    Case("add members: nothing new keeps versions", "add_memberships", (("eng", "ann@x"), ("ops", "cid@x"))),
    Case("add members as manual feed", "add_memberships", (("sales", "ann@x"),), feed="manual"),
    Case(
        "add members: user of another directory",
        "add_memberships",
        (("eng", "dee@x"), ("eng", "stranger@x")),
        error=InvalidValue,
    ),
    Case("add members: unknown user", "add_memberships", (("ops", "nobody@x"),), error=InvalidValue),
    Case(
        "add members: team of another directory", "add_memberships", (("foreign", "ann@x"),), error=NotFound
    ),
    Case(
        "remove members: pull never removes manual ones; non-members are no change",
        "remove_memberships",
        (("eng", "ann@x"), ("eng", "bob@x"), ("ops", "cid@x"), ("sales", "ann@x")),
    ),
    Case(
        "remove members as manual feed removes manual ones",
        "remove_memberships",
        (("eng", "bob@x"),),
        feed="manual",
    ),
    Case("remove members: nothing to remove keeps versions", "remove_memberships", (("sales", "eve@x"),)),
    Case(
        "remove members: team of another directory",
        "remove_memberships",
        (("foreign", "ann@x"),),
        error=NotFound,
    ),
    # join_teams: items are new team bodies (dicts) and existing teams (names); extra["user"] joins
    Case(
        "join new teams only (a first login)",
        "join_teams",
        ({"displayName": "new", "externalId": "g-new"}, {"displayName": "bare"}),
        extra={"user": "dee@x"},
    ),
    Case(
        "join new and existing teams; an existing (manual) membership unchanged",
        "join_teams",
        ({"displayName": "new", "externalId": "g-new"}, "eng", "ops", "sales"),
        extra={"user": "bob@x"},
    ),
    Case("join existing teams only", "join_teams", ("ops", "sales"), extra={"user": "ann@x"}),
    Case(
        "join as manual feed",
        "join_teams",
        ({"displayName": "new"}, "sales"),
        feed="manual",
        extra={"user": "ann@x"},
    ),
    Case(
        "join: a new team's name taken",
        "join_teams",
        ({"displayName": "ENG"},),
        extra={"user": "ann@x"},
        error=Conflict,
    ),
    Case(
        "join: team of another directory",
        "join_teams",
        ({"displayName": "new"}, "foreign"),
        extra={"user": "ann@x"},
        error=NotFound,
    ),
    Case(
        "join: user of another directory",
        "join_teams",
        ({"displayName": "new"}, "ops"),
        extra={"user": "stranger@x"},
        error=InvalidValue,
    ),
]


def _per_row(s: Any, case: Case, a: Actor, directory: str) -> None:
    if case.op == "create_users":
        for b in case.items:
            users.create_user(s, actor=a, body=b)
    elif case.op == "create_teams":
        for b in case.items:
            teams.create_team(s, actor=a, body=b)
    elif case.op == "set_active":
        for n in case.items:
            users.set_active(s, actor=a, user_id=_id(s, User, directory, n), active=case.active)
    elif case.op == "join_teams":
        uid = _id(s, User, directory, case.extra["user"])
        new = [teams.create_team(s, actor=a, body=b).id for b in case.items if isinstance(b, dict)]
        old = [_id(s, Team, directory, t) for t in case.items if isinstance(t, str)]
        for tid in [*sorted(new), *sorted(set(old))]:
            teams.change_members(s, actor=a, team_id=tid, add=[uid])
    else:
        by_team: dict[str, list[str]] = {}
        for t, u in case.items:
            by_team.setdefault(_id(s, Team, directory, t), []).append(_id(s, User, directory, u))
        key = "add" if case.op == "add_memberships" else "remove"
        for tid, uids in by_team.items():
            teams.change_members(s, actor=a, team_id=tid, **{key: uids})


def _bulk(s: Any, case: Case, a: Actor, directory: str) -> None:
    if case.op in ("create_users", "create_teams"):
        getattr(bulk, case.op)(s, actor=a, bodies=list(case.items))
    elif case.op == "set_active":
        ids = [_id(s, User, directory, n) for n in case.items]
        bulk.set_active(s, actor=a, user_ids=ids, active=case.active)
    elif case.op == "join_teams":
        bulk.join_teams(
            s,
            actor=a,
            user_id=_id(s, User, directory, case.extra["user"]),
            bodies=[b for b in case.items if isinstance(b, dict)],
            team_ids=[_id(s, Team, directory, t) for t in case.items if isinstance(t, str)],
        )
    else:
        pairs = [(_id(s, Team, directory, t), _id(s, User, directory, u)) for t, u in case.items]
        getattr(bulk, case.op)(s, actor=a, pairs=pairs)


def state(engine: Engine, directory: str) -> dict[str, Any]:
    """Everything of `directory`, ids replaced by names, directory name by "D"."""
    with session_scope(engine, write=False) as s:
        us = s.execute(select(User).where(User.directory == directory)).scalars().all()
        ts = s.execute(select(Team).where(Team.directory == directory)).scalars().all()
        names = {u.id: u.user_name for u in us} | {t.id: t.display_name for t in ts}

        def named(v: Any) -> Any:
            if isinstance(v, str):
                return names.get(v, v)
            if isinstance(v, list):
                return [named(x) for x in v]
            if isinstance(v, dict):
                return {k: named(x) for k, x in v.items()}
            return v

        emails = s.execute(
            select(UserEmail.user_id, UserEmail.value, UserEmail.value_key, UserEmail.type, UserEmail.primary)
            .where(UserEmail.user_id.in_(list(names)))  # type: ignore[attr-defined]
            .order_by(UserEmail.id)
        ).all()
        ms = s.execute(select(Membership).where(Membership.directory == directory)).scalars().all()
        events = s.execute(
            select(AuditEvent).where(AuditEvent.directory == directory).order_by(AuditEvent.id)
        ).scalars()
        return {
            "users": sorted(
                (
                    u.user_name,
                    u.user_name_key,
                    u.external_id,
                    u.display_name,
                    u.given_name,
                    u.family_name,
                    u.active,
                    repr(u.data),
                    u.version,
                )
                for u in us
            ),
            # per user in id order (a user's addresses keep their order); users by name, since
            # users written on several connections interleave their email ids
            "emails": sorted(((names[e[0]], *e[1:]) for e in emails), key=lambda e: e[0]),
            "teams": sorted(
                (
                    t.display_name,
                    t.display_name_key,
                    t.external_id,
                    repr(t.data),
                    t.member_count,
                    t.version,
                    t.archived,
                )
                for t in ts
            ),
            "members": sorted((names[m.team_id], names[m.user_id], m.source) for m in ms),
            "counts_match_rows": all(t.member_count == sum(m.team_id == t.id for m in ms) for t in ts),
            "audit": sorted(
                repr(
                    (
                        e.actor,
                        e.action,
                        e.resource_type,
                        named(e.resource_id),
                        named(e.before),
                        named(e.after),
                        e.sync_run_id,
                    )
                )
                for e in events
            ),
        }


def _run(engine: Engine, case: Case, directory: str, fn: Callable[..., None]) -> tuple[str, str] | None:
    try:
        with session_scope(engine) as s:
            fn(s, case, actor(directory, case.feed), directory)
    except ServiceError as exc:
        return type(exc).__name__, str(exc).replace(directory, "D")
    return None


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    for d in ("row", "bulk"):
        seed(engine, d)
    with session_scope(engine) as s:
        tokens.ensure_directory(s, name="other", kind="graph")
        users.create_user(s, actor=actor("other"), body=ubody("stranger@x"))
        teams.create_team(s, actor=actor("other"), body={"displayName": "foreign"})
    return engine


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bulk_matches_per_row(seeded: Engine, case: Case) -> None:
    before = state(seeded, "bulk")
    other = state(seeded, "other")
    row_err = _run(seeded, case, "row", _per_row)
    bulk_err = _run(seeded, case, "bulk", _bulk)

    assert (row_err and row_err[0]) == (case.error and case.error.__name__)
    assert (bulk_err and bulk_err[0]) == (row_err and row_err[0])
    after = state(seeded, "bulk")
    assert after == state(seeded, "row")
    assert after["counts_match_rows"]
    assert (after == before) == (case.error is not None) or case.name.endswith("keeps versions")
    assert state(seeded, "other") == other


def test_conflict_and_not_found_messages_match_per_row(seeded: Engine) -> None:
    for case in CASES:
        if case.error in (Conflict, NotFound):
            assert _run(seeded, case, "bulk", _bulk) == _run(seeded, case, "row", _per_row), case.name


def test_results_name_what_really_changed(seeded: Engine) -> None:
    a = actor("bulk")
    with session_scope(seeded) as s:
        eng, ops = _id(s, Team, "bulk", "eng"), _id(s, Team, "bulk", "ops")
        ann, bob, cid = (_id(s, User, "bulk", n) for n in ("ann@x", "bob@x", "cid@x"))
        assert bulk.add_memberships(s, actor=a, pairs=[(eng, ann), (eng, cid), (ops, cid)]) == {eng: [cid]}
        assert bulk.remove_memberships(s, actor=a, pairs=[(eng, bob), (eng, cid), (ops, ann)]) == {eng: [cid]}
        assert bulk.set_active(s, actor=a, user_ids=[ann, bob], active=True) == []
        ids = bulk.create_users(s, actor=a, bodies=[ubody("p@x"), ubody("q@x")])
        assert [users.get_user(s, actor=a, user_id=i).user_name for i in ids] == ["p@x", "q@x"]
        assert bulk.add_memberships(s, actor=a, pairs=[]) == {}
        assert bulk.create_users(s, actor=a, bodies=[]) == []


def test_join_teams_names_the_new_teams_and_the_teams_really_joined(seeded: Engine) -> None:
    a = actor("bulk")
    with session_scope(seeded) as s:
        eng, ops, sales = (_id(s, Team, "bulk", n) for n in ("eng", "ops", "sales"))
        ann = _id(s, User, "bulk", "ann@x")
        bodies = [{"displayName": "p"}, {"displayName": "q"}]
        new, joined = bulk.join_teams(s, actor=a, user_id=ann, bodies=bodies, team_ids=[sales, eng, ops])
        assert [teams.get_team(s, actor=a, team_id=t).display_name for t in new] == ["p", "q"]
        assert joined == sorted([ops, sales])  # ann was in eng already
        assert bulk.join_teams(s, actor=a, user_id=ann, bodies=[], team_ids=[eng]) == ([], [])


def test_create_teams_refuses_members(seeded: Engine) -> None:
    with session_scope(seeded) as s, pytest.raises(InvalidValue):
        bulk.create_teams(s, actor=actor("bulk"), bodies=[{"displayName": "t", "members": [{"value": "x"}]}])


def test_batches_larger_than_one_statement(seeded: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pairs and ids split over several statements give the same result as one."""
    monkeypatch.setattr(bulk, "PAIRS", 3)
    monkeypatch.setattr("syncd.service.common.CHUNK", 2)
    a = actor("bulk")
    with session_scope(seeded) as s:
        made = bulk.create_users(s, actor=a, bodies=[ubody(f"m{i}@x") for i in range(7)])
        assert len(common.chunks(made)) == 4  # the smaller chunk size is really in effect
        assert bulk.set_active(s, actor=a, user_ids=made, active=False) == made
        assert bulk.set_active(s, actor=a, user_ids=made, active=True) == made
        eng = _id(s, Team, "bulk", "eng")
        added = bulk.add_memberships(s, actor=a, pairs=[(eng, u) for u in made])
        assert added == {eng: made}
        assert bulk.remove_memberships(s, actor=a, pairs=[(eng, u) for u in made[:5]]) == {eng: made[:5]}
        t = teams.get_team(s, actor=a, team_id=eng)
        n = s.execute(select(Membership).where(Membership.team_id == eng)).scalars().all()
        assert (t.member_count, len(n)) == (4, 4)


def test_lookups_by_external_id_and_name_stay_in_the_directory(seeded: Engine) -> None:
    a = actor("bulk")
    with session_scope(seeded, write=False) as s:
        ann, eng = _id(s, User, "bulk", "ann@x"), _id(s, Team, "bulk", "eng")
        assert keys.find_ids(
            s, actor=a, kind="user", external_ids=["ext-ann@x", "ext-stranger@x", "nope"]
        ) == {"ext-ann@x": ann}
        assert keys.find_ids(s, actor=a, kind="team", external_ids=["ext-eng"]) == {"ext-eng": eng}
        assert keys.name_holders(s, actor=a, kind="team", keys=["eng", "foreign", "x"]) == {"eng": eng}
        assert keys.name_holders(s, actor=a, kind="user", keys=["ann@x", "stranger@x"]) == {"ann@x": ann}


@pytest.mark.parametrize("kind", ["user", "team"])
def test_parked_names_let_a_permutation_go_through_the_per_row_operations(seeded: Engine, kind: str) -> None:
    """A cycle of three renames, written one row at a time: audited once per row, one version
    bump each, and no parked key left behind (a row the block did not rename gets its own back)."""
    a = actor("bulk")
    model, names = (User, ["ann@x", "bob@x", "cid@x"]) if kind == "user" else (Team, list(SEED_TEAMS))
    with session_scope(seeded) as s:
        ids = [_id(s, model, "bulk", n) for n in names]
        before = dict(s.execute(select(model.id, model.version).where(model.id.in_(ids))).tuples().all())
        untouched = _id(s, model, "bulk", "dee@x" if kind == "user" else "eng")
        with keys.parked_names(s, actor=a, kind=kind, ids=[*ids, untouched] if kind == "user" else ids):  # type: ignore[arg-type]
            for i, new in zip(ids, names[1:] + names[:1], strict=True):
                attr = "userName" if kind == "user" else "displayName"
                op = [{"op": "replace", "path": attr, "value": new}]
                if kind == "user":
                    users.patch_user(s, actor=a, user_id=i, operations=op)
                else:
                    teams.patch_team(s, actor=a, team_id=i, operations=op)
    with session_scope(seeded, write=False) as s:
        key = model.user_name_key if kind == "user" else model.display_name_key
        rows = dict(s.execute(select(model.id, key).where(model.directory == "bulk")).tuples().all())
        assert [rows[i] for i in ids] == names[1:] + names[:1]
        assert not any(k.startswith(keys.PARKED) for k in rows.values())
        after = dict(s.execute(select(model.id, model.version).where(model.id.in_(ids))).tuples().all())
        assert after == {i: v + 1 for i, v in before.items()}
        q = select(AuditEvent.resource_id).where(
            AuditEvent.resource_id.in_(ids), AuditEvent.action == f"{kind}.patch"
        )
        assert sorted(s.execute(q).scalars().all()) == sorted(ids)  # one event per rename


def test_parked_names_are_never_committed_when_the_block_fails(seeded: Engine) -> None:
    a = actor("bulk")
    with session_scope(seeded, write=False) as s:
        eng = _id(s, Team, "bulk", "eng")
    with (
        pytest.raises(RuntimeError),
        session_scope(seeded) as s,
        keys.parked_names(s, actor=a, kind="team", ids=[eng]),
    ):
        raise RuntimeError("killed")
    with session_scope(seeded, write=False) as s:
        assert s.execute(select(Team.display_name_key).where(Team.id == eng)).scalar_one() == "eng"


def test_new_ids_are_distinct_version_4_uuids_in_ascending_order() -> None:
    import uuid

    ids = bulk.new_ids(5000)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for i in ids:
        u = uuid.UUID(i)
        assert str(u) == i and u.version == 4 and u.variant == uuid.RFC_4122
    variants = {i[19] for i in ids}
    assert variants == set("89ab")  # every variant digit occurs: the random bits reach it


def test_created_users_get_ascending_ids_in_body_order(seeded: Engine) -> None:
    a = actor("bulk")
    bodies = [{"userName": f"order{i}@example.com", "externalId": f"order{i}"} for i in range(50)]
    with session_scope(seeded) as s:
        ids = bulk.create_users(s, actor=a, bodies=bodies)
    assert ids == sorted(ids) and len(set(ids)) == 50
    with session_scope(seeded, write=False) as s:
        got = dict(s.execute(select(User.external_id, User.id).where(User.id.in_(ids))).tuples().all())
        before = s.execute(select(AuditEvent.before).where(AuditEvent.resource_id.in_(ids))).scalars().all()
    assert [got[f"order{i}"] for i in range(50)] == ids
    assert before == [None] * 50


_EMAIL = [{"value": "ann@x", "type": "work", "primary": True}]


#: per resource type: its schema and the fast check of bulk that takes a body as canonical
CANONICAL = {"team": (GROUP, bulk._canonical_team), "user": (USER, bulk._canonical_user)}


@pytest.mark.parametrize(
    ("kind", "body", "canonical"),
    [
        ("team", {"displayName": "Eng", "externalId": "g1"}, True),
        ("team", {"displayName": "Eng"}, True),
        ("team", {"externalId": "g1", "displayName": "Ünïcode ß"}, True),
        ("team", {"displayName": "Eng", "externalId": ""}, False),  # normalised away
        ("team", {"displayName": ""}, False),  # required
        ("team", {"displayName": "   "}, False),  # blank
        ("team", {"displayName": "a\tb"}, False),  # control character
        ("team", {"displayName": "x" * 200}, False),  # may break a limit once casefolded
        ("team", {"displayName": 7}, False),
        ("team", {"displayName": "Eng", "members": []}, False),
        ("team", {"displayname": "Eng"}, False),  # normalize renames the key
        ("team", {"displayName": "Eng", "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]}, False),
        ("user", {"userName": "ann@x", "externalId": "u1", "active": True}, True),
        ("user", {"userName": "ann@x"}, True),
        ("user", {"userName": "ann@x", "active": False}, True),
        ("user", {"userName": "ann@x", "externalId": None}, False),  # normalize drops it
        (
            "user",
            {"userName": "Ann", "displayName": "Ann B", "name": {"givenName": "Ann"}, "emails": _EMAIL},
            True,
        ),
        ("user", {"userName": "ann@x", "displayName": None}, False),
        ("user", {"userName": ""}, False),  # required
        ("user", {"userName": "   "}, False),  # blank
        ("user", {"userName": "a\tb"}, False),  # control character
        ("user", {"userName": "x" * 200}, False),  # may break a limit once casefolded
        ("user", {"userName": 7}, False),
        ("user", {"userName": "ann", "externalId": ""}, False),  # normalised away
        ("user", {"userName": "ann", "name": {}}, False),
        ("user", {"userName": "ann", "name": {"givenName": ""}}, False),
        ("user", {"userName": "ann", "emails": [{"value": "a@x", "type": "home", "primary": True}]}, False),
        ("user", {"userName": "ann", "emails": [{"value": "a@x", "primary": True, "type": "work"}]}, False),
        ("user", {"userName": "ann", "active": 1}, False),
        ("user", {"username": "ann"}, False),  # normalize renames the key
    ],
)
def test_a_body_taken_as_canonical_is_its_own_normal_form(
    kind: str, body: dict[str, Any], canonical: bool
) -> None:
    schema, is_canonical = CANONICAL[kind]
    assert is_canonical(body) is canonical
    if canonical:
        assert normalize(schema, body) == body
        assert list(normalize(schema, body)) == list(body)  # same key order: same stored JSON text
        require(schema, body)
