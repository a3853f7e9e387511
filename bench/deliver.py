"""Benchmark: delivering a tenant to a local SCIM target (the LiteLLM-style gateway fake).

    python bench/deliver.py [--users N --groups N --members N] [--store URL] [--changes N]

Setup (not timed): the Graph fake's seeded tenant is pulled into a fresh store (SQLite file, or
a fresh schema of the PostgreSQL database given by `--store`); the gateway fake runs in its own
subprocess (its own GIL). Phases, each in its own subprocess so `*_rss_mb` is its own peak
resident set size (`getrusage(RUSAGE_SELF).ru_maxrss`, interpreter and imports included):

- `initial`: `push_once` on first connect: full reconcile (read the empty gateway, create every
  user and team with its members) then incremental catch-up — requests, writes, seconds;
- `noop`: `push_once --full` with nothing changed: reads the gateway back, writes nothing;
- `latency`: daemon mode: the target worker running, `--changes` single member additions
  committed one after another through the service layer; the latency of each is from its commit
  to the moment the target's cursor passed it (the gateway acknowledged it) — p50/p95/max.

Prints one JSON line.
"""

from __future__ import annotations

import argparse
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

TOKEN = "sk-bench-gateway"
GATEWAY = r"""
import sys, time
from connectors.testing.gateway import Gateway
from connectors.testing.server import ServerThread
srv = ServerThread(Gateway(sys.argv[1]).app(), port=int(sys.argv[2]), log_level="error").start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"""


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def target_settings(url: str, concurrency: int) -> Any:
    from syncd.config.models import ScimTarget

    return ScimTarget.model_validate(
        {
            "kind": "scim",
            "url": url,
            "token": TOKEN,
            "users": "all",
            "concurrency": concurrency,
            "safety": {"allow_deletes": True},
        }
    )


def populate(args: argparse.Namespace) -> dict[str, Any]:
    from connectors.testing.harness import running_fake
    from connectors.testing.tenant import generate
    from syncd.reconcile.run import RunOptions, run_sync
    from syncd.store.engine import make_engine, upgrade

    engine = make_engine(args.store)
    upgrade(engine)
    tenant = generate(users=args.users, groups=args.groups, members_per_group=args.members)
    t0 = time.perf_counter()
    with running_fake("graph", tenant) as (fake, url):
        conn = fake.connector(
            url, directory="entra", concurrency=8, time_budget=3600.0, request_timeout=120.0
        )
        r = run_sync(engine, conn, RunOptions(lock_dir=Path(args.lock_dir), trigger="bench"))
    if r.outcome != "applied":
        raise SystemExit(f"populating the store failed: {r.error}")
    engine.dispose()
    return {"s": time.perf_counter() - t0, "changes": sum(r.applied.values())}


def push_phase(args: argparse.Namespace, *, full: bool) -> dict[str, Any]:
    from syncd.store.engine import make_engine
    from syncd.targets.run import push_once

    engine = make_engine(args.store)
    t = target_settings(args.url, args.concurrency)
    t0 = time.perf_counter()
    outs = push_once(engine, "bench", t, full=full, lock_dir=Path(args.lock_dir))
    secs = time.perf_counter() - t0
    bad = [o for o in outs if o.outcome != "applied"]
    if bad:
        raise SystemExit(f"push failed: {[o.error for o in bad]}")
    return {
        "s": secs,
        "requests": sum(o.requests for o in outs),
        "writes": sum(o.writes for o in outs),
        "applied": {k: v for o in outs for k, v in o.applied.items()},
        "errors": sum(len(o.errors) for o in outs),
        "rss_mb": rss_mb(),
    }


def latency_phase(args: argparse.Namespace) -> dict[str, Any]:
    import random

    from sqlalchemy import select

    from syncd import feed
    from syncd.config import parse_config
    from syncd.feed.position import Position
    from syncd.service import teams
    from syncd.service.context import Actor
    from syncd.store.engine import make_engine, session_scope
    from syncd.store.models import Team, User
    from syncd.targets import state as st
    from syncd.targets.worker import TargetWorkers

    engine = make_engine(args.store)
    settings = parse_config(
        f'state_dir = "{args.lock_dir}"\n[store]\nurl = "{args.store}"\n[directories.entra]\nkind = "graph"\n'
        'tenant_id = "t"\nclient_id = "c"\nclient_secret = "s"\n'
        f'[targets.bench]\nkind = "scim"\nurl = "{args.url}"\ntoken = "{TOKEN}"\nusers = "all"\n'
        f"concurrency = {args.concurrency}\n"
    )
    rng = random.Random(5)
    with session_scope(engine, write=False) as s:
        team_ids = list(s.execute(select(Team.id).where(Team.directory == "entra")).scalars())
        user_ids = list(s.execute(select(User.id).where(User.directory == "entra", User.active)).scalars())
    workers = TargetWorkers(engine, lambda: settings, None)
    workers.start()
    actor = Actor("pull", "entra", "bench")
    lat: list[float] = []
    try:
        time.sleep(2.0)  # the worker's first pass (nothing to deliver) is out of the way
        for _ in range(args.changes):
            with session_scope(engine) as s:
                teams.change_members(s, actor=actor, team_id=rng.choice(team_ids), add=[rng.choice(user_ids)])
            t0 = time.perf_counter()
            want = Position.parse(feed.head(engine))
            deadline = t0 + 30
            while time.perf_counter() < deadline:
                pos = st.get_state(engine, "bench").position
                if pos is not None and Position.parse(pos) >= want:
                    break
                time.sleep(0.01)
            lat.append(time.perf_counter() - t0)
            time.sleep(rng.uniform(0.05, 0.2))
    finally:
        workers.shutdown(10)
    lat.sort()

    def q(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))], 3)

    return {"n": len(lat), "p50": q(0.50), "p95": q(0.95), "max": round(lat[-1], 3), "rss_mb": rss_mb()}


def run_phase(name: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--phase",
        name,
        "--store",
        args.store,
        "--url",
        args.url,
        "--lock-dir",
        args.lock_dir,
        "--users",
        str(args.users),
        "--groups",
        str(args.groups),
        "--members",
        str(args.members),
        "--changes",
        str(args.changes),
        "--concurrency",
        str(args.concurrency),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=7200)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"phase {name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def fresh_store(url: str | None, tmp: str) -> tuple[str, Any]:
    if not url:
        return f"sqlite:///{tmp}/syncd.db", lambda: None
    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in url else "?"

    def drop() -> None:
        with admin.begin() as c:
            c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))

    return f"{url}{sep}options=-csearch_path%3D{schema}", drop


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--groups", type=int, default=10_000)
    ap.add_argument("--members", type=int, default=100)
    ap.add_argument("--store", default=None)
    ap.add_argument("--changes", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--phase", default=None)
    ap.add_argument("--url", default=None)
    ap.add_argument("--lock-dir", default=None)
    args = ap.parse_args()
    if args.phase:
        fn = {
            "populate": populate,
            "initial": lambda a: push_phase(a, full=False),
            "noop": lambda a: push_phase(a, full=True),
            "latency": latency_phase,
        }[args.phase]
        print(json.dumps(fn(args)), flush=True)
        return
    from connectors.testing.server import free_port

    with tempfile.TemporaryDirectory() as tmp:
        store, drop = fresh_store(args.store, tmp)
        port = free_port()
        gw = subprocess.Popen(
            [sys.executable, "-c", GATEWAY, TOKEN, str(port)], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        try:
            assert gw.stdout is not None and gw.stdout.readline().strip() == "ready"
            args.store, args.url, args.lock_dir = store, f"http://127.0.0.1:{port}/scim/v2", tmp
            pop = run_phase("populate", args)
            init = run_phase("initial", args)
            noop = run_phase("noop", args)
            lat = run_phase("latency", args)
        finally:
            gw.terminate()
            gw.wait(10)
            drop()
    out = {
        "users": args.users,
        "groups": args.groups,
        "members_per_group": args.members,
        "store": "postgresql" if args.store and args.store.startswith("postgresql") else "sqlite",
        "target": "LiteLLM-style gateway fake (own process, count capped at 100)",
        "concurrency": args.concurrency,
        "populate_s": round(pop["s"], 1),
        "initial_s": round(init["s"], 1),
        "initial_requests": init["requests"],
        "initial_writes": init["writes"],
        "initial_applied": init["applied"],
        "initial_errors": init["errors"],
        "initial_rss_mb": round(init["rss_mb"], 1),
        "noop_full_s": round(noop["s"], 1),
        "noop_full_requests": noop["requests"],
        "noop_full_writes": noop["writes"],
        "noop_full_rss_mb": round(noop["rss_mb"], 1),
        "latency_changes": lat["n"],
        "latency_p50_s": lat["p50"],
        "latency_p95_s": lat["p95"],
        "latency_max_s": lat["max"],
        "latency_rss_mb": round(lat["rss_mb"], 1),
        "rss_method": "getrusage ru_maxrss, one subprocess per phase",
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
