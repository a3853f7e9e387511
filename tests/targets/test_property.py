"""Property: whatever sequence of directory changes happens, with deliveries at any points in
between, the target converges to the store's desired state (no duplicate, nothing left over),
and a full reconcile then finds nothing to do. Both stores."""

from __future__ import annotations

import time
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as stg

from connectors.testing.gateway import Gateway
from connectors.testing.server import serve
from syncd.service import teams, users
from syncd.service.errors import ServiceError
from syncd.store import session_scope
from syncd.targets import state as st
from syncd.targets.client import RetryPolicy
from syncd.targets.reconcile import full_reconcile
from syncd.targets.run import make_client, push_once
from tests.targets.helpers import (
    TOKEN,
    actor,
    add_team,
    add_user,
    differences,
    expected,
    gateway_state,
    setup_dirs,
)
from tests.targets.helpers import target as make_target

N_USERS, N_TEAMS = 8, 3


def managed(gw: Gateway, engine, name: str):
    """The gateway's state without the teams syncd let go of (`on_team_left = "keep"`)."""
    ids = {m.remote_id for (k, _), m in st.load_map(engine, name).items() if k == "team"}
    us, ts = gateway_state(gw)
    keep = {tm.alias for tm in gw.teams.values() if tm.id in ids}
    return us, {k: v for k, v in ts.items() if k in keep}


op = stg.one_of(
    stg.tuples(stg.just("add"), stg.integers(0, N_TEAMS - 1), stg.integers(0, N_USERS - 1)),
    stg.tuples(stg.just("remove"), stg.integers(0, N_TEAMS - 1), stg.integers(0, N_USERS - 1)),
    stg.tuples(stg.just("deactivate"), stg.integers(0, N_USERS - 1)),
    stg.tuples(stg.just("reactivate"), stg.integers(0, N_USERS - 1)),
    stg.tuples(stg.just("rename"), stg.integers(0, N_TEAMS - 1), stg.sampled_from(["a", "b", "c", "d"])),
    stg.tuples(stg.just("archive"), stg.integers(0, N_TEAMS - 1)),
    stg.tuples(stg.just("unarchive"), stg.integers(0, N_TEAMS - 1)),
    stg.tuples(stg.just("delete_user"), stg.integers(0, N_USERS - 1)),
    stg.tuples(stg.just("delete_team"), stg.integers(0, N_TEAMS - 1)),
    stg.tuples(stg.just("new_user"), stg.integers(0, N_TEAMS - 1)),
    stg.tuples(stg.just("push")),
)


def apply_op(engine, directory: str, o: tuple, uids: list[str], tids: list[str]) -> None:
    a = actor(directory)
    try:
        with session_scope(engine) as s:
            kind = o[0]
            if kind in ("add", "remove"):
                arg = {"add" if kind == "add" else "remove": [uids[o[2]]]}
                teams.change_members(s, actor=a, team_id=tids[o[1]], **arg)
            elif kind in ("deactivate", "reactivate"):
                users.set_active(s, actor=a, user_id=uids[o[1]], active=kind == "reactivate")
            elif kind == "rename":
                teams.patch_team(
                    s,
                    actor=a,
                    team_id=tids[o[1]],
                    operations=[{"op": "replace", "path": "displayName", "value": f"team-{o[2]}-{o[1]}"}],
                )
            elif kind in ("archive", "unarchive"):
                teams.set_archived(s, actor=a, team_id=tids[o[1]], archived=kind == "archive")
            elif kind == "delete_user":
                users.delete_user(s, actor=a, user_id=uids[o[1]])
            elif kind == "delete_team":
                teams.delete_team(s, actor=a, team_id=tids[o[1]])
    except ServiceError:
        pass  # the user or team is gone already: not a change
    if o[0] == "new_user":
        new = add_user(engine, directory, f"n{uuid.uuid4().hex[:6]}@{directory}")
        uids.append(new)
        try:
            with session_scope(engine) as s:
                teams.change_members(s, actor=a, team_id=tids[o[1]], add=[new])
        except ServiceError:
            pass


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ops=stg.lists(op, min_size=1, max_size=14),
    users_mode=stg.sampled_from(["members", "all"]),
    on_user_left=stg.sampled_from(["deactivate", "delete"]),
    on_team_left=stg.sampled_from(["delete", "keep"]),
)
def test_any_changes_then_delivery_converge(
    engine, tmp_path, ops, users_mode, on_user_left, on_team_left
) -> None:
    directory = f"p-{uuid.uuid4().hex[:10]}"
    name = f"t-{directory}"
    setup_dirs(engine, directory)
    uids = [add_user(engine, directory, f"u{i}@{directory}") for i in range(N_USERS)]
    tids = [add_team(engine, directory, f"team-{j}", uids[j * 2 : j * 2 + 4]) for j in range(N_TEAMS)]
    gw = Gateway(TOKEN)
    with serve(gw.app()) as srv:
        t = make_target(
            srv.url + "/scim/v2",
            sources=[directory],
            users=users_mode,
            on_user_left=on_user_left,
            on_team_left=on_team_left,
            member_chunk=2,
            safety={"allow_deletes": True},
        )

        def push() -> None:
            c = make_client(t, retry=RetryPolicy(attempts=3, base=0.01))
            outs = push_once(engine, name, t, lock_dir=tmp_path, client=c)
            assert all(o.outcome == "applied" for o in outs), [o.error for o in outs]
            assert all(not o.errors for o in outs), [o.errors for o in outs]

        push()
        for o in ops:
            if o[0] == "push":
                push()
            else:
                apply_op(engine, directory, o, uids, tids)
        deadline = time.monotonic() + (60 if engine.dialect.name == "postgresql" else 3)
        while True:  # PostgreSQL withholds changes while older transactions anywhere are open
            push()
            if managed(gw, engine, name) == expected(engine, t) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert managed(gw, engine, name) == expected(engine, t), differences(
            managed(gw, engine, name), expected(engine, t)
        )
        names = [u.user_name.casefold() for u in gw.users.values()]
        assert len(names) == len(set(names)) and not [u for u in gw.users.values() if u.placeholder]
        aliases = [tm.alias for tm in gw.teams.values()]
        assert len(aliases) == len(set(aliases))
        check = full_reconcile(engine, name, t, make_client(t), dry_run=True)
        assert check.plan.is_empty(), check.plan.counts()
