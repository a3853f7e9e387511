"""Benchmark: whole sync runs (`run_sync`: fetch → load → diff → apply) of the Graph fake's
tenant into a store, against the fetch floor of `bench/snapshot_graph.py`.

    python bench/reconcile_graph.py [--users N --groups N --members N] [--store URL]

The fake Graph runs in a subprocess (its own GIL), built from the seeded tenant and warmed
before anything is timed; it changes the tenant when told to between phases. The store is a
fresh SQLite file (default) or the PostgreSQL database given by `--store` (a fresh schema).
Each phase runs in its own subprocess, so `*_rss_mb` is that phase's own peak resident set
size (`getrusage(RUSAGE_SELF).ru_maxrss`, interpreter and imports included):

- `floor`: the raw httpx read of `snapshot_graph.floor` (no SDK, no store);
- `initial`: first sync into the empty store (full read; saves the delta cursor);
- `noop_full`: re-sync with a full read and nothing changed (no cursor) — writes nothing;
- `noop_delta`: re-sync from the saved cursor, nothing changed;
- `delta_changes`: after 1% of the tenant changed (see `CHANGES`), re-sync from the cursor;
- `full_changes`: after another 1% changed, re-sync with a full read;
- PostgreSQL only, `initial_row_checks`: a first sync of the (changed) tenant into another
  empty store, owned by a role that may not set `session_replication_role`: what a store role
  without that grant gets, with its new memberships' foreign keys checked per row
  (`syncd.service.pg_fk`). The phases above run as the URL's role (`postgres`, a superuser,
  by default), like a role granted `SET ON PARAMETER session_replication_role`.

`*_ratio` is a phase's time over the floor's. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

#: per 1% round at 100k users / 10k groups: users changed (renamed / disabled / enabled),
#: member edges added and removed, groups renamed — as fractions of users or groups
CHANGES = {
    "renamed_users": 0.005,
    "disabled_users": 0.003,
    "enabled_users": 0.002,
    "member_adds": 0.01,
    "member_removes": 0.01,
    "renamed_groups": 0.01,
}

SERVER = r"""
import random, sys
from connectors.testing.tenant import generate
from connectors.testing.graph import GraphFake
from connectors.testing.server import ServerThread
sys.path.insert(0, sys.argv[5])
from reconcile_graph import mutate
users, groups, members = map(int, sys.argv[1:4])
t = generate(users=users, groups=groups, members_per_group=members)
fake = GraphFake(t)

def warm():
    idx = fake.index()
    for gid in t.groups:
        idx.transitive_members(gid)

warm()
srv = ServerThread(fake.app(), backlog=4096).start()
print(srv.url, t.membership_count, flush=True)
rng = random.Random(int(sys.argv[4]))
for line in sys.stdin:
    if line.strip() == "mutate":
        done = mutate(t, rng)
        warm()
        print(" ".join(f"{k}={v}" for k, v in done.items()), flush=True)
srv.stop()
"""


def mutate(t: Any, rng: Any) -> dict[str, int]:
    """One round of `CHANGES` on tenant `t` (run inside the server process)."""
    users = sorted(t.users)
    groups = sorted(t.groups)
    n_u, n_g = len(users), len(groups)
    done = dict.fromkeys(CHANGES, 0)
    for uid in rng.sample(users, int(n_u * CHANGES["renamed_users"])):
        t.update_user(uid, family_name=f"Renamed{rng.randrange(10**6)}")
        done["renamed_users"] += 1
    active = [u for u in users if t.users[u].active]
    for uid in rng.sample(active, int(n_u * CHANGES["disabled_users"])):
        t.update_user(uid, active=False)
        done["disabled_users"] += 1
    inactive = [u for u in users if not t.users[u].active]
    for uid in rng.sample(inactive, min(len(inactive), int(n_u * CHANGES["enabled_users"]))):
        t.update_user(uid, active=True)
        done["enabled_users"] += 1
    for _ in range(int(n_u * CHANGES["member_adds"])):
        g, u = rng.choice(groups), rng.choice(users)
        if u not in t.groups[g].user_ids:
            t.add_member(g, u)
            done["member_adds"] += 1
    for _ in range(int(n_u * CHANGES["member_removes"])):
        g = t.groups[rng.choice(groups)]
        if g.user_ids:
            t.remove_member(g.id, rng.choice(sorted(g.user_ids)))
            done["member_removes"] += 1
    for gid in rng.sample(groups, int(n_g * CHANGES["renamed_groups"])):
        t.rename_group(gid, f"{t.groups[gid].name}-r{rng.randrange(10**6)}")
        done["renamed_groups"] += 1
    return done


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def phase(args: argparse.Namespace) -> dict[str, Any]:
    """One phase in this process; returns its figures."""
    from connectors.testing.graph import GraphFake
    from connectors.testing.tenant import Tenant

    fake = GraphFake(Tenant())  # same default credentials as the server's fake
    if args.phase == "floor":
        from snapshot_graph import floor

        secs, n_users, n_members = asyncio.run(floor(args.url, fake, 999, args.concurrency))
        return {"s": secs, "users": n_users, "memberships": n_members, "rss_mb": rss_mb()}

    from syncd.reconcile.run import RunOptions, run_sync
    from syncd.store.engine import make_engine

    engine = make_engine(args.store)
    conn = fake.connector(
        args.url, directory="bench", page_size=999, concurrency=args.concurrency, time_budget=1200.0
    )
    fetch = {"s": 0.0}
    inner = conn.snapshot

    async def timed_snapshot(**kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await inner(**kw)
        finally:
            fetch["s"] = time.perf_counter() - t0

    conn.snapshot = timed_snapshot  # type: ignore[method-assign]
    opts = RunOptions(
        trigger="bench",
        use_cursor=args.phase in ("initial", "noop_delta", "delta_changes"),
        allow_deletes=True,
        lock_dir=Path(args.lock_dir),
    )
    t0 = time.perf_counter()
    res = run_sync(engine, conn, opts)
    secs = time.perf_counter() - t0
    engine.dispose()
    if res.outcome != "applied":
        raise SystemExit(f"{args.phase}: {res.outcome}: {res.error}")
    return {
        "s": secs,
        "fetch_s": fetch["s"],
        "mode": res.mode,
        "applied": sum(res.applied.values()),
        "applied_by_kind": res.applied,
        "rss_mb": rss_mb(),
    }


def run_phase(name: str, url: str, store: str, lock_dir: str, concurrency: int) -> dict[str, Any]:
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--phase",
            name,
            "--url",
            url,
            "--store",
            store,
            "--lock-dir",
            lock_dir,
            "--concurrency",
            str(concurrency),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=3600,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"phase {name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def fresh_store(url: str | None, tmp: str, owner: str | None = None) -> tuple[str, Any]:
    """(store URL, cleanup) for a migrated empty store. PostgreSQL, `owner`: the schema is that
    role's (created as a login role that is no superuser, with the URL's password, and dropped
    by the cleanup), and the URL connects as it."""
    from sqlalchemy import create_engine, make_url, text

    from syncd.store.engine import make_engine, upgrade

    if not url:
        url = f"sqlite:///{tmp}/syncd.db"
        eng = make_engine(url)
        upgrade(eng)
        eng.dispose()
        return url, lambda: None
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as c:
        if owner:
            password = make_url(url).password
            quoted = password.replace("'", "''") if password else None
            login = f"LOGIN PASSWORD '{quoted}'" if quoted else "LOGIN"
            c.execute(text(f'CREATE ROLE "{owner}" {login} NOSUPERUSER'))
            c.execute(text(f'CREATE SCHEMA "{schema}" AUTHORIZATION "{owner}"'))
        else:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
    if owner:
        url = make_url(url).set(username=owner).render_as_string(hide_password=False)
    sep = "&" if "?" in url else "?"
    scoped = f"{url}{sep}options=-csearch_path%3D{schema}"
    eng = make_engine(scoped)
    upgrade(eng)
    eng.dispose()

    def drop() -> None:
        with admin.begin() as c:
            c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            if owner:
                c.execute(text(f'DROP ROLE IF EXISTS "{owner}"'))
        admin.dispose()

    return scoped, drop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--groups", type=int, default=10_000)
    ap.add_argument("--members", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--store", help="store URL (default: a fresh SQLite file); PostgreSQL: a fresh schema")
    ap.add_argument("--seed", type=int, default=7, help="seed of the tenant changes")
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--lock-dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(phase(args)))
        return

    tmp = tempfile.mkdtemp(prefix="bench-reconcile-")
    store, cleanup = fresh_store(args.store, tmp)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SERVER,
            str(args.users),
            str(args.groups),
            str(args.members),
            str(args.seed),
            str(ROOT / "bench"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    out: dict[str, Any] = {"kind": "graph", "store": "postgresql" if args.store else "sqlite"}
    try:
        assert proc.stdin is not None and proc.stdout is not None
        url, memberships = proc.stdout.readline().split()
        out["direct_memberships"] = int(memberships)

        def step(name: str) -> dict[str, Any]:
            return run_phase(name, url, store, tmp, args.concurrency)

        def change() -> str:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write("mutate\n")
            proc.stdin.flush()
            return proc.stdout.readline().strip()

        fl = step("floor")
        out.update(
            users=fl["users"],
            memberships=fl["memberships"],
            floor_s=round(fl["s"], 2),
            floor_rss_mb=round(fl["rss_mb"], 1),
        )
        for name in ("initial", "noop_full", "noop_delta", "delta_changes", "full_changes"):
            if name == "delta_changes":
                out["changes_1"] = change()
            elif name == "full_changes":
                out["changes_2"] = change()
            r = step(name)
            out[f"{name}_s"] = round(r["s"], 2)
            out[f"{name}_fetch_s"] = round(r["fetch_s"], 2)
            out[f"{name}_ratio"] = round(r["s"] / fl["s"], 2)
            out[f"{name}_applied"] = r["applied"]
            out[f"{name}_rss_mb"] = round(r["rss_mb"], 1)
            if name.endswith("changes"):
                out[f"{name}_by_kind"] = " ".join(f"{k}={v}" for k, v in sorted(r["applied_by_kind"].items()))
        if args.store:
            out.update(row_checks(args, url, tmp, fl["s"]))
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=60)
        cleanup()
    out["concurrency"] = args.concurrency
    out["rss_method"] = "getrusage ru_maxrss, one subprocess per phase"
    print(json.dumps(out))


def row_checks(args: argparse.Namespace, url: str, tmp: str, floor_s: float) -> dict[str, Any]:
    """The `initial_row_checks` phase (see the module), after the machine settled."""
    from run import settle

    waited = settle()
    owner = f"syncd_bench_{uuid.uuid4().hex[:8]}"
    store, cleanup = fresh_store(args.store, tmp, owner=owner)
    try:
        r = run_phase("initial", url, store, tmp, args.concurrency)
    finally:
        cleanup()
    return {
        "initial_row_checks_s": round(r["s"], 2),
        "initial_row_checks_fetch_s": round(r["fetch_s"], 2),
        "initial_row_checks_ratio": round(r["s"] / floor_s, 2),
        "initial_row_checks_applied": r["applied"],
        "initial_row_checks_settled_s": waited,
    }


if __name__ == "__main__":
    main()
