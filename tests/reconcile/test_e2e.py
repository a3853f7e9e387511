"""End-to-end pulls: a real connector over HTTP against a fake IdP, into SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connectors.testing.faults import FaultPlan
from connectors.testing.harness import running_fake
from connectors.testing.tenant import generate
from syncd.reconcile.run import RunOptions, run_sync
from syncd.reconcile.safety import Thresholds
from syncd.service import users
from syncd.service.context import Actor
from syncd.store import session_scope
from syncd.store.models import AuditEvent, Membership, SyncRun, Team, User

DIR = "entra"
# generous timeouts: a loaded CI machine must not turn a slow answer into an incomplete read
FAST = {"page_size": 50, "concurrency": 4, "max_retries": 3, "time_budget": 120.0, "request_timeout": 30.0}


def tenant(**kw):
    args = {
        "seed": 3,
        "users": 120,
        "groups": 15,
        "members_per_group": 12,
        "nesting_depth": 2,
        "disabled_fraction": 0.1,
    }
    return generate(**{**args, **kw})


def sync(engine, fake, url, tmp_path, conn_opts=None, **opts):
    conn = fake.connector(url, directory=DIR, **{**FAST, **(conn_opts or {})})
    return run_sync(engine, conn, RunOptions(lock_dir=tmp_path, **opts))


def store_state(engine, directory=DIR):
    """(users {ext: (userName, active)}, teams {ext: (name, archived)}, {(team ext, user ext)}, counts ok)."""
    with session_scope(engine, write=False) as s:
        us = {
            e: (n, a)
            for e, n, a in s.execute(
                select(User.external_id, User.user_name, User.active).where(User.directory == directory)
            )
        }
        ts = {
            e: (n, ar)
            for e, n, ar in s.execute(
                select(Team.external_id, Team.display_name, Team.archived).where(Team.directory == directory)
            )
        }
        ms = set(
            s.execute(
                select(Team.external_id, User.external_id)
                .join(Membership, Membership.team_id == Team.id)
                .join(User, User.id == Membership.user_id)
            ).tuples()
        )
        counts_ok = all(
            t.member_count
            == s.execute(
                select(func.count()).select_from(Membership).where(Membership.team_id == t.id)
            ).scalar_one()
            for t in s.execute(select(Team)).scalars()
        )
    return us, ts, ms, counts_ok


def idp_state(fake):
    t, x = fake.tenant, fake.external_id
    us = {x(u.id): (u.user_name, u.active) for u in t.users.values()}
    ts = {x(g.id): (g.name, False) for g in t.groups.values()}
    ms = {(x(g.id), x(u)) for g in t.groups.values() for u in t.transitive_user_ids(g.id)}
    return us, ts, ms


def audit_total(engine) -> int:
    with session_scope(engine, write=False) as s:
        return s.execute(select(func.count()).select_from(AuditEvent)).scalar_one()


def assert_converged(engine, fake, *, gone_users=(), gone_teams=(), directory=DIR) -> None:
    us, ts, ms, counts_ok = store_state(engine, directory)
    want_us, want_ts, want_ms = idp_state(fake)
    assert counts_ok
    assert {k: v for k, v in us.items() if k not in gone_users} == want_us
    assert all(us[k][1] is False for k in gone_users)
    assert {k: v for k, v in ts.items() if k not in gone_teams} == want_ts
    assert all(ts[k][1] is True for k in gone_teams)
    assert ms == want_ms


def test_first_sync_then_noop_resync_writes_nothing(engine, tmp_path) -> None:
    with running_fake("graph", tenant()) as (fake, url):
        r1 = sync(engine, fake, url, tmp_path)
        assert r1.outcome == "applied", r1.error
        assert_converged(engine, fake)
        before = audit_total(engine)
        r2 = sync(engine, fake, url, tmp_path, use_cursor=False)
        assert r2.outcome == "applied" and r2.plan is not None and r2.plan.empty
        r3 = sync(engine, fake, url, tmp_path)  # delta read from the saved cursor
        assert r3.outcome == "applied" and r3.mode == "delta" and r3.plan is not None and r3.plan.empty
        assert audit_total(engine) == before


@pytest.mark.parametrize("use_cursor", [True, False], ids=["delta", "full"])
def test_idp_changes_converge_in_one_run(engine, tmp_path, use_cursor: bool) -> None:
    with running_fake("graph", tenant()) as (fake, url):
        assert sync(engine, fake, url, tmp_path).outcome == "applied"
        t, x = fake.tenant, fake.external_id
        gids, uids = list(t.groups), list(t.users)
        t.add_member(gids[0], uids[-1])  # add
        t.remove_member(gids[1], next(iter(t.groups[gids[1]].user_ids)))  # remove
        t.rename_group(gids[2], "renamed")  # rename
        t.update_user(uids[3], active=False)  # disable
        t.update_user(uids[4], user_name="renamed.user@contoso.example")  # rename user
        t.add_member(gids[5], gids[6])  # nesting change: g6's users now reach g5
        t.delete_group(gids[7])
        t.delete_user(uids[8])
        newbie = t.add_user("newbie@contoso.example")
        t.add_member(gids[9], newbie.id)
        r = sync(engine, fake, url, tmp_path, use_cursor=use_cursor, allow_deletes=True)
        assert r.outcome == "applied", r.error
        assert_converged(engine, fake, gone_users={x(uids[8])}, gone_teams={x(gids[7])})
        again = sync(engine, fake, url, tmp_path, use_cursor=use_cursor)
        assert again.plan is not None and again.plan.empty


def test_snapshot_failing_half_way_deactivates_and_removes_nothing(engine, tmp_path) -> None:
    faults = FaultPlan()
    with running_fake("graph", tenant(), faults) as (fake, url):
        assert sync(engine, fake, url, tmp_path).outcome == "applied"
        t, x = fake.tenant, fake.external_id
        gone = next(iter(t.users))
        t.delete_user(gone)
        t.add_group("brand-new")
        faults.add("error", path="transitiveMembers", after=5, times=None, status=503)
        r = sync(engine, fake, url, tmp_path, {"max_retries": 0}, use_cursor=False)
        assert r.outcome == "partial" and not r.complete  # recorded as such, not as a success
        us, ts, _, _ = store_state(engine)
        assert us[x(gone)][1] is True  # still active: an incomplete read removes nothing
        assert any(n == "brand-new" for n, _ in ts.values())  # but additions went in
        assert (r.plan.counts().get("deactivate_user", 0), r.plan.counts().get("remove_members", 0)) == (0, 0)


def test_run_above_threshold_writes_nothing_and_keeps_the_plan(engine, tmp_path) -> None:
    with running_fake("graph", tenant()) as (fake, url):
        assert sync(engine, fake, url, tmp_path).outcome == "applied"
        doomed = list(fake.tenant.users)[:40]
        active = sum(1 for uid in doomed if fake.tenant.users[uid].active)
        for uid in doomed:
            fake.tenant.delete_user(uid)
        before = store_state(engine), audit_total(engine)
        r = sync(engine, fake, url, tmp_path, use_cursor=False, thresholds=Thresholds(max_count=10))
        assert r.outcome == "stopped" and "--allow-deletes" in (r.error or "")
        assert (store_state(engine), audit_total(engine)) == before
        with session_scope(engine, write=False) as s:
            run = s.get(SyncRun, r.run_id)
            assert run.outcome == "stopped" and run.plan["counts"]["deactivate_user"] == active
        r2 = sync(
            engine,
            fake,
            url,
            tmp_path,
            use_cursor=False,
            thresholds=Thresholds(max_count=10),
            allow_deletes=True,
        )
        assert r2.outcome == "applied"


def test_push_and_pull_converge_on_external_id(engine, tmp_path) -> None:
    with running_fake("graph", tenant()) as (fake, url):
        u = next(iter(fake.tenant.users.values()))
        with session_scope(engine) as s:
            from syncd.service.tokens import ensure_directory

            ensure_directory(s, name=DIR, kind="graph")
            pushed = users.create_user(
                s,
                actor=Actor("scim", DIR, "token:x"),
                body={"userName": u.user_name, "externalId": fake.external_id(u.id)},
            )
        assert sync(engine, fake, url, tmp_path).outcome == "applied"
        with session_scope(engine, write=False) as s:
            rows = (
                s.execute(select(User.id).where(User.external_id == fake.external_id(u.id))).scalars().all()
            )
        assert rows == [pushed.id]


def test_rows_of_other_directories_and_local_rows_are_untouched(engine, tmp_path) -> None:
    with running_fake("graph", tenant()) as (fake, url):
        with session_scope(engine) as s:
            from syncd.service.tokens import ensure_directory

            ensure_directory(s, name="okta", kind="scim")
            users.create_user(
                s, actor=Actor("scim", "okta", "t"), body={"userName": "o@x", "externalId": "o1"}
            )
            users.create_user(s, actor=Actor("manual", None, "cli"), body={"userName": "local@x"})
        assert sync(engine, fake, url, tmp_path).outcome == "applied"
        with session_scope(engine, write=False) as s:
            others = s.execute(
                select(User.user_name, User.active, User.version).where(
                    (User.directory != DIR) | User.directory.is_(None)
                )
            ).all()
        assert sorted(others) == [("local@x", True, 1), ("o@x", True, 1)]


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    from syncd.reconcile import apply as ap
    from syncd.reconcile.run import RunOptions, run_sync
    from syncd.store.engine import make_engine
    from connectors.testing.harness import fake_class
    from connectors.testing.tenant import generate
    ap.BATCH = 20
    ap.MEMBER_BATCH = 20
    seen = [0]
    def progress(phase, done, total):
        seen[0] += 1
        if seen[0] == 4:
            print("KILL-ME", flush=True)
            time.sleep(60)
    url, db, lock = sys.argv[1], sys.argv[2], sys.argv[3]
    fake = fake_class("graph")(generate(seed=3, users=120, groups=15, members_per_group=12, nesting_depth=2,
                                        disabled_fraction=0.1))
    conn = fake.connector(url, directory="entra", page_size=50)
    run_sync(make_engine(db), conn, RunOptions(lock_dir=__import__("pathlib").Path(lock)), on_apply=progress)
""")


def test_process_killed_during_apply_leaves_a_store_the_next_run_completes(engine, tmp_path: Path) -> None:
    with running_fake("graph", tenant()) as (fake, url):
        script = tmp_path / "victim.py"
        script.write_text(KILL_SCRIPT)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        proc = subprocess.Popen(
            [
                sys.executable,
                str(script),
                url,
                engine.url.render_as_string(hide_password=False),
                str(tmp_path),
            ],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and b"KILL-ME" not in proc.stdout.readline():
            pass
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        us, _, ms, counts_ok = store_state(engine)
        assert counts_ok  # whatever was written is consistent
        assert 0 < len(us) < 120 or len(ms) < len(idp_state(fake)[2])  # killed part-way
        r = sync(engine, fake, url, tmp_path)
        assert r.outcome == "applied", r.error
        assert_converged(engine, fake)


LOGIN_KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from syncd.config import parse_config
    from syncd.daemon.login import LoginService
    from syncd.reconcile import apply as ap
    from syncd.reconcile.run import RunOptions, run_sync
    from syncd.store.engine import make_engine
    from connectors.testing.harness import fake_class
    from connectors.testing.tenant import generate
    ap.BATCH = 20
    ap.MEMBER_BATCH = 20
    url, db, lock, directory, login_user = sys.argv[1:6]
    fake = fake_class("graph")(generate(seed=3, users=120, groups=15, members_per_group=12, nesting_depth=2,
                                        disabled_fraction=0.1))
    engine = make_engine(db)
    settings = parse_config(f'state_dir = "{lock}"\\n[store]\\nurl = "{db}"\\n[directories.{directory}]\\n'
                            'kind = "graph"\\ntenant_id = "t"\\nclient_id = "c"\\nclient_secret = "s"\\n')
    connect = lambda *a, **k: fake.connector(url, directory=directory, page_size=50)
    logins = LoginService(engine, lambda: settings, connector_factory=connect)
    def progress(phase, done, total):
        if phase == "users" and done == 20:  # the pull is held after its first batch: a login runs
            r = logins.sync(directory, login_user)
            print("LOGIN", r.found, len(r.created_teams), flush=True)
        if phase == "members":  # the login's user and teams were planned as creates, and went in
            print("KILL-ME", flush=True)
            time.sleep(60)
    r = run_sync(engine, connect(), RunOptions(lock_dir=Path(lock)), on_apply=progress)
    print("RESULT", r.outcome, r.error, flush=True)
""")


def test_a_login_during_apply_then_a_kill_leaves_a_store_the_next_run_completes(
    engine, tmp_path: Path
) -> None:
    """Defect 2 under the kill harness: a login creates a user and teams the running pull's plan
    creates in later batches; the pull adopts them and goes on (before: Conflict, run failed),
    is killed mid-apply, and the next run converges with one row per IdP object."""
    directory = f"entra-{uuid.uuid4().hex[:8]}"  # lock keys are database-wide: a name of its own
    with running_fake("graph", tenant()) as (fake, url):
        t, x = fake.tenant, fake.external_id
        user = max((u for u in t.users.values() if t.transitive_group_ids(u.id)), key=lambda u: x(u.id))
        script = tmp_path / "victim.py"
        script.write_text(LOGIN_KILL_SCRIPT)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        db = engine.url.render_as_string(hide_password=False)
        proc = subprocess.Popen(
            [sys.executable, str(script), url, db, str(tmp_path), directory, user.id],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert proc.stdout is not None
        seen: list[bytes] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (line := proc.stdout.readline()):
            seen.append(line)
            if b"KILL-ME" in line:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert seen and seen[0].startswith(b"LOGIN True") and seen[-1] == b"KILL-ME\n", seen
        us, _, _, counts_ok = store_state(engine, directory)
        assert counts_ok and us[x(user.id)][0] == user.user_name
        conn = fake.connector(url, directory=directory, **FAST)
        r = run_sync(engine, conn, RunOptions(lock_dir=tmp_path))
        assert r.outcome == "applied", r.error
        assert_converged(engine, fake, directory=directory)


def test_graph_delta_and_full_reads_give_same_named_groups_the_same_team_names(engine, tmp_path) -> None:
    """Two groups of one name, then a swap of names, then a cycle: each delta run names every
    team as the next full read does (before: the delta suffixed only the group it carried and
    the full read renamed the other; the swap stopped the directory)."""
    with running_fake("graph", tenant()) as (fake, url):
        assert sync(engine, fake, url, tmp_path).outcome == "applied"
        t, x = fake.tenant, fake.external_id
        g = list(t.groups)

        def permute(*ids: str) -> None:  # each group takes the next one's name (a swap, a cycle)
            old = [t.groups[i].name for i in ids]
            for i, name in zip(ids, old[1:] + old[:1], strict=True):
                t.rename_group(i, name)

        steps = [
            lambda: t.add_group(t.groups[g[0]].name),  # a second group of g0's name
            lambda: permute(g[1], g[2]),
            lambda: permute(g[3], g[4], g[5]),
            lambda: permute(g[0], g[6]),  # one of the two same-named groups swaps with another
        ]
        names = lambda: {x(i): grp.name for i, grp in t.groups.items()}  # noqa: E731
        for step in steps:
            before = names()
            step()
            assert names() != before
            r = sync(engine, fake, url, tmp_path)  # from the saved cursor
            assert (r.outcome, r.mode) == ("applied", "delta"), r.error
            teams = store_state(engine)[1]
            full = sync(engine, fake, url, tmp_path, use_cursor=False)
            assert full.outcome == "applied" and full.plan is not None and full.plan.empty, (
                full.plan.to_dict()
            )
            assert store_state(engine)[1] == teams
