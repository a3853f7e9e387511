"""Full reconcile against the LiteLLM-style gateway fake, on both stores: adoption without
duplicates, filters the gateway ignores, its 100 cap, upsert by email, refusals and faults."""

from __future__ import annotations

from collections import Counter

import pytest

from connectors.testing.faults import FaultPlan
from syncd.targets import state as st
from syncd.targets.apply import Applier
from syncd.targets.client import RetryPolicy, ScimClient
from syncd.targets.desired import DesiredUser
from syncd.targets.errors import Refused
from syncd.targets.plan import TargetPlan
from syncd.targets.reconcile import full_reconcile
from tests.targets.helpers import NAME, TOKEN, add_team, add_user, expected, gateway_state, setup_dirs, target

FAST = RetryPolicy(attempts=6, base=0.01, cap=0.05)


def client(url: str, **kw) -> ScimClient:
    return ScimClient(url, TOKEN, retry=kw.pop("retry", FAST), **kw)


def populate(engine, n_users: int = 30, n_teams: int = 4, directory: str = "entra") -> list[str]:
    setup_dirs(engine, directory)
    ids = [add_user(engine, directory, f"user{i}@{directory}.example") for i in range(n_users)]
    for j in range(n_teams):
        add_team(engine, directory, f"team-{j}", ids[j * 5 : j * 5 + 12])
    return ids


def no_duplicates(running) -> None:
    users, teams = running.gw.snapshot()
    emails = Counter(e.casefold() for _, e, _ in users.values() if e)
    assert not [e for e, n in emails.items() if n > 1]
    names = Counter(n.casefold() for n, _, _ in users.values())
    assert not [n for n, c in names.items() if c > 1]
    aliases = Counter(a for a, _ in teams.values())
    assert not [a for a, n in aliases.items() if n > 1]
    assert not [u for u in running.gw.users.values() if u.placeholder]


def test_delivers_past_the_100_cap_and_a_second_pass_writes_nothing(engine, gateway) -> None:
    populate(engine, n_users=210, n_teams=3)
    t = target(gateway.url, users="all")
    c = client(gateway.url)
    out = full_reconcile(engine, NAME, t, c)
    assert out.errors == []
    assert gateway_state(gateway.gw) == expected(engine, t)
    assert len(gateway.gw.users) == 210
    again = client(gateway.url)
    out = full_reconcile(engine, NAME, t, again)
    assert out.plan.is_empty() and again.stats.writes == 0
    assert again.stats.by_status["200"] >= 3  # 210 users cannot come back in fewer than 3 pages


def test_adopts_what_the_gateway_holds_and_duplicates_nothing(engine, gateway) -> None:
    populate(engine)
    gw = gateway.gw
    pre = client(gateway.url)
    # made on the gateway before syncd: same userName; same email under another userName; same team name
    a = pre.create("Users", {"userName": "USER1@entra.example", "emails": [{"value": "user1@entra.example"}]})
    b = pre.create("Users", {"userName": "legacy-2", "emails": [{"value": "user2@entra.example"}]})
    g = pre.create("Groups", {"displayName": "team-0", "members": [{"value": b["id"]}]})
    admin = pre.create("Users", {"userName": "admin@gw", "emails": [{"value": "admin@gw"}]})
    pre.patch("Groups", g["id"], [{"op": "add", "path": "members", "value": [{"value": admin["id"]}]}])
    t = target(gateway.url)
    out = full_reconcile(engine, NAME, t, client(gateway.url))
    assert {"adopt_user", "adopt_team"} <= set(out.applied) or out.plan.adopt
    no_duplicates(gateway)
    users, _teams = gw.snapshot()
    assert users[a["id"]][0] == "USER1@entra.example"  # adopted, kept its id
    assert users[b["id"]][0] == "user2@entra.example"  # adopted by email, userName put right
    assert admin["id"] in {m for m in gw.teams[g["id"]].members}  # not syncd's: left in the team
    exp_users, exp_teams = expected(engine, t)
    got_users, got_teams = gateway_state(gw)
    assert {k: v for k, v in got_users.items() if k != "admin@gw"} == exp_users
    assert got_teams["team-0"] - {"admin@gw"} == exp_teams["team-0"]
    idmap = st.load_map(engine, NAME)
    assert len({m.remote_id for m in idmap.values()}) == len(idmap)


def test_filters_the_gateway_ignores_are_checked_client_side(gateway) -> None:
    c = client(gateway.url)
    for i in range(5):
        c.create("Users", {"userName": f"u{i}", "emails": [{"value": f"u{i}@x"}]})
    raw, _ = c.list_page("Users", start=1, count=100, filter='emails.value eq "u3@x"')
    assert len(raw) == 5  # the gateway answered everyone
    assert c.find("Users", "externalId", "u3") == []
    assert [r["userName"] for r in c.find("Users", "userName", "U3")] == ["u3"]
    raw, _ = c.list_page("Users", start=1, count=500)
    assert len(raw) == 5


def test_a_create_upserted_by_email_keeps_the_gateway_id(engine, gateway) -> None:
    setup_dirs(engine, "entra")
    c = client(gateway.url)
    old = c.create("Users", {"userName": "old-name", "emails": [{"value": "shared@x"}]})
    lid = add_user(engine, "entra", "new-name@x", email="shared@x")
    twin = add_user(engine, "entra", "twin@x", email="shared@x")
    idmap: dict = {}
    ap = Applier(engine, NAME, target(gateway.url, concurrency=1), c, idmap)
    users = [
        DesiredUser(lid, "new-name@x", "e1", emails=(("shared@x", "work", True),)),
        DesiredUser(twin, "twin@x", "e2", emails=(("shared@x", "work", True),)),
    ]
    res = ap.apply(TargetPlan(create_users=users), desired=None)  # type: ignore[arg-type]
    assert idmap[("user", lid)].remote_id == old["id"]
    assert len(gateway.gw.users) == 1
    assert any("twin@x" in e and "same email" in e for e in res.errors)
    assert st.load_map(engine, NAME)[("user", twin)].remote_id is None or ("user", twin) not in idmap


def test_a_gateway_without_its_licence_is_refused_not_retried(engine, gateway) -> None:
    populate(engine, 3, 1)
    gateway.gw.licensed = False
    c = client(gateway.url)
    with pytest.raises(Refused, match="enterprise licence"):
        full_reconcile(engine, NAME, target(gateway.url), c)
    assert c.stats.requests == 1


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "throttle", "retry_after": 0.05, "times": 3},
        {"kind": "throttle", "retry_after": 0, "times": 3},
        {"kind": "error", "status": 500, "times": 3},
        {"kind": "error", "status": 503, "method": "POST", "times": 4},
        {"kind": "timeout", "delay": 1.5, "method": "POST", "path": "/Groups", "times": 2},
        {"kind": "timeout", "delay": 1.5, "method": "PATCH", "times": 1},
    ],
)
def test_faults_are_retried_and_the_target_converges(engine, gateway, fault) -> None:
    populate(engine, 20, 3)
    rule = dict(fault)
    gateway.gw.faults = FaultPlan()
    gateway.gw.faults.add(rule.pop("kind"), after=2, **rule)
    t = target(gateway.url, member_chunk=5)
    c = client(gateway.url, timeout=0.5)
    full_reconcile(engine, NAME, t, c)
    assert gateway.gw.faults.rules[0].fired > 0
    assert gateway_state(gateway.gw) == expected(engine, t)
    no_duplicates(gateway)
    again = client(gateway.url)
    assert full_reconcile(engine, NAME, t, again).plan.is_empty() and again.stats.writes == 0


def test_a_team_created_before_a_crash_and_renamed_since_is_adopted_and_renamed(engine, gateway) -> None:
    setup_dirs(engine, "entra")
    ids = [add_user(engine, "entra", f"u{i}@x") for i in range(3)]
    tid = add_team(engine, "entra", "eng", ids)
    t = target(gateway.url)
    full_reconcile(engine, NAME, t, client(gateway.url))
    rid = st.load_map(engine, NAME)[("team", tid)].remote_id
    # as if the team's create had been sent and the process killed before its id was saved
    st.save(engine, NAME, [st.Mapped("team", tid, None)])
    from syncd.service import teams
    from syncd.store import session_scope
    from tests.targets.helpers import actor

    with session_scope(engine) as s:
        teams.patch_team(
            s,
            actor=actor("entra"),
            team_id=tid,
            operations=[{"op": "replace", "path": "displayName", "value": "engineering"}],
        )
    full_reconcile(engine, NAME, t, client(gateway.url))
    assert st.load_map(engine, NAME)[("team", tid)].remote_id == rid
    assert gateway_state(gateway.gw) == expected(engine, t)
    no_duplicates(gateway)
