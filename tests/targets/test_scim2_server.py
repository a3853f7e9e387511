"""An independent SCIM service provider as the target: scim2-server (python-scim), as a real
process. After a pull of each fake IdP tenant and one push, its Users and Groups equal the
store's desired state, and a second push sends no write. Both stores."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connectors.testing.harness import running_fake
from connectors.testing.server import free_port
from connectors.testing.tenant import generate
from syncd.reconcile.run import RunOptions, run_sync
from syncd.targets.client import RetryPolicy, ScimClient
from syncd.targets.remote import read_target
from syncd.targets.run import make_client, push_once
from tests.targets.helpers import NAME, TOKEN, expected, target

PULL = {"concurrency": 4, "max_retries": 3, "time_budget": 120.0, "request_timeout": 30.0}


def scim2_server_bin() -> str:
    found = shutil.which("scim2-server") or str(Path(sys.executable).with_name("scim2-server"))
    if not Path(found).exists():
        pytest.fail("scim2-server is not installed (it is a test dependency)")
    return found


@pytest.fixture
def scim2_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [scim2_server_bin(), "--port", str(port), "--bearer-token", TOKEN],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/v2"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/ServiceProviderConfig", timeout=2).status_code < 500:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"scim2-server did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
        time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def target_state(url: str) -> tuple[dict[str, str | None], dict[str, frozenset[str]]]:
    with ScimClient(url, TOKEN, retry=RetryPolicy(attempts=2)) as c:
        r = read_target(c)
    assert r.complete
    users = {u.user_name.casefold(): u for u in r.users.values() if u.active is not False}
    by_id = {u.id: u.user_name.casefold() for u in r.users.values()}
    teams = {
        g.display_name: frozenset(by_id[m] for m in g.members if by_id[m] in users) for g in r.groups.values()
    }
    assert len(teams) == len(r.groups), "a team name appears twice: a duplicate"
    assert len(users) == len({u.user_name.casefold() for u in r.users.values()})
    return {n: sorted(u.emails)[0] if u.emails else None for n, u in users.items()}, teams


@pytest.mark.parametrize("kind", ["graph", "okta", "google"])
def test_a_pulled_tenant_lands_on_scim2_server_and_a_second_push_writes_nothing(
    engine, tmp_path, scim2_server, kind
) -> None:
    tenant = generate(
        seed=21,
        users=40,
        groups=6,
        members_per_group=8,
        nesting_depth=1 if kind == "graph" else 0,
        domain=f"{kind}.example",
    )
    with running_fake(kind, tenant) as (fake, url):
        r = run_sync(
            engine,
            fake.connector(url, directory=f"{kind}-{uuid.uuid4().hex[:8]}", **PULL),
            RunOptions(lock_dir=tmp_path),
        )
        assert r.outcome == "applied", r.error
    t = target(scim2_server, users="all")
    outs = push_once(engine, NAME, t, lock_dir=tmp_path, client=make_client(t))
    assert [o.outcome for o in outs] == ["applied", "applied"], [o.error or o.errors for o in outs]
    want_users, want_teams = expected(engine, t)
    got_users, got_teams = target_state(scim2_server)
    assert got_users == {n: (e or "").casefold() or None for n, e in want_users.items()}
    assert got_teams == want_teams
    c = make_client(t)
    again = push_once(engine, NAME, t, lock_dir=tmp_path, client=c, full=True)
    assert again[0].plan is not None and again[0].plan.is_empty(), again[0].plan.counts()
    assert c.stats.writes == 0
