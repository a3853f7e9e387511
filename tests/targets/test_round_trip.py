"""Round trip: Graph fake → syncd A (pull) → SCIM delivery → a second `syncd serve` B.
B's store ends equal to A's (its active users, teams and memberships), on either store for A;
a second push writes nothing, and a change in the IdP travels the whole way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from connectors.testing.harness import running_fake
from connectors.testing.server import free_port
from connectors.testing.tenant import generate
from syncd.config.models import ScimTarget
from syncd.reconcile.run import RunOptions, run_sync
from syncd.store import session_scope
from syncd.store.engine import make_engine
from syncd.store.models import Membership, Team, User
from syncd.targets.client import RetryPolicy
from syncd.targets.run import make_client, push_once
from tests.targets.helpers import NAME

ROOT = Path(__file__).resolve().parents[2]
DIR = f"entra-{uuid.uuid4().hex[:10]}"  # directory locks are database-wide on PostgreSQL
PULL = {"concurrency": 4, "max_retries": 3, "time_budget": 120.0, "request_timeout": 30.0}


def syncd(cfg: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "--config", str(cfg), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        **kw,
    )


def store_view(engine, directory: str | None) -> tuple[dict, dict]:
    """({userName: (emails, given, family)} of active users, {team name: member userNames})."""
    with session_scope(engine, write=False) as s:
        uq = select(User).where(User.active.is_(True))
        tq = select(Team).where(Team.archived.is_(False))
        if directory:
            uq, tq = uq.where(User.directory == directory), tq.where(Team.directory == directory)
        users = {u.id: u for u in s.execute(uq).scalars()}
        teams = {t.id: t.display_name for t in s.execute(tq).scalars()}
        members = s.execute(select(Membership.team_id, Membership.user_id)).all()
    out_users = {
        u.user_name.casefold(): (
            sorted(e["value"].casefold() for e in u.data.get("emails", [])),
            u.given_name,
            u.family_name,
        )
        for u in users.values()
    }
    out_teams: dict[str, set[str]] = {name: set() for name in teams.values()}
    for tid, uid in members:
        if tid in teams and uid in users:
            out_teams[teams[tid]].add(users[uid].user_name.casefold())
    return out_users, out_teams


@pytest.fixture
def syncd_b(tmp_path):
    """A second syncd: its own SQLite store, a push directory `from-a`, `syncd serve` running."""
    port = free_port()
    d = tmp_path / "b"
    d.mkdir()
    cfg = d / "config.toml"
    cfg.write_text(
        f'state_dir = "{d}"\n[server]\nlisten = "127.0.0.1:{port}"\n[directories.from-a]\nkind = "scim"\n'
    )
    assert syncd(cfg, "db", "upgrade").returncode == 0
    tok = syncd(cfg, "token", "create", "--directory", "from-a", "--json")
    assert tok.returncode == 0, tok.stderr
    token = json.loads(tok.stdout)["token"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "--config", str(cfg), "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/scim/v2"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/ServiceProviderConfig", timeout=2)
            break
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(
                    f"syncd serve did not start: {proc.stderr.read().decode() if proc.stderr else ''}"
                )
            time.sleep(0.1)
    engine = make_engine(f"sqlite:///{d / 'syncd.db'}")
    try:
        yield url, token, engine
    finally:
        engine.dispose()
        proc.terminate()
        proc.wait(15)


def test_graph_to_syncd_to_syncd_ends_with_equal_stores(engine, tmp_path, syncd_b) -> None:
    url_b, token_b, engine_b = syncd_b
    tenant = generate(
        seed=31, users=40, groups=6, members_per_group=9, nesting_depth=1, disabled_fraction=0.1
    )
    t = ScimTarget.model_validate({"kind": "scim", "url": url_b, "token": token_b, "users": "all"})
    with running_fake("graph", tenant) as (fake, url):
        conn = lambda: fake.connector(url, directory=DIR, **PULL)  # noqa: E731
        assert run_sync(engine, conn(), RunOptions(lock_dir=tmp_path)).outcome == "applied"
        outs = push_once(
            engine, NAME, t, lock_dir=tmp_path, client=make_client(t, retry=RetryPolicy(attempts=3))
        )
        assert [o.outcome for o in outs] == ["applied", "applied"], [o.error or o.errors for o in outs]
        assert all(not o.errors for o in outs), outs[0].errors[:5]
        assert store_view(engine_b, "from-a") == store_view(engine, DIR)
        c = make_client(t)
        again = push_once(engine, NAME, t, lock_dir=tmp_path, client=c, full=True)
        assert again[0].plan.is_empty(), again[0].plan.counts()
        assert c.stats.writes == 0
        # a change in the IdP travels the whole way: pull into A, incremental delivery to B
        gids, uids = list(fake.tenant.groups), list(fake.tenant.users)
        fake.tenant.rename_group(gids[0], "renamed-team")
        fake.tenant.add_member(gids[1], uids[-1])
        fake.tenant.update_user(uids[2], active=False)
        assert run_sync(engine, conn(), RunOptions(lock_dir=tmp_path, use_cursor=False)).outcome == "applied"
    deadline = time.monotonic() + 60
    while True:  # PostgreSQL may withhold new changes while other transactions of the database are open
        outs = push_once(engine, NAME, t, lock_dir=tmp_path, client=make_client(t))
        assert all(o.outcome == "applied" for o in outs), [o.error for o in outs]
        if store_view(engine_b, "from-a") == store_view(engine, DIR) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert store_view(engine_b, "from-a") == store_view(engine, DIR)
    assert "renamed-team" in store_view(engine_b, "from-a")[1]
