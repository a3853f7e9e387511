"""Benchmark: the SCIM endpoint under an Entra-like provisioning load, on SQLite and PostgreSQL.

    python bench/scim_load.py [--seconds 15] [--max-requests 20000] [--levels 1,8,32]
                              [--big 100000] [--samples 200]

The server is `syncd serve` in a subprocess (its own interpreter and GIL) over a migrated store:
a SQLite file, then a fresh schema in PostgreSQL's `test` database (dropped afterwards). The
load generator is one asyncio process with httpx and `level` concurrent clients, each sending
one request at a time over a kept-alive connection, for `--seconds` or until `--max-requests`
requests in all, whichever comes first. The mix, as Entra's provisioning cycle sends it:

    50 %  GET  /Users?filter=userName eq "…"   (4 in 5 name a provisioned user, 1 in 5 nobody)
    20 %  POST /Users                           (a new user, Entra's body)
    30 %  PATCH /Groups/{id}                    (one member Add, or Remove of one added earlier)

Each client owns a disjoint slice of the seeded users, so every Add and Remove is a real change.
Latency is measured by the client (request sent → response read), in milliseconds.

Then the p50 of adding one member over HTTP to a team of `--big` members vs a team of 100
(seeded by bulk insert; the adds alternate between the two teams). They should be within
1.5x of each other; the ratio is reported, not asserted. Prints one JSON line; details
(per-operation p50, CPU use of server and load generator) go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, delete  # noqa: E402

from connectors.testing.server import free_port  # noqa: E402
from syncd.service import teams, tokens, users  # noqa: E402
from syncd.service.context import Actor  # noqa: E402
from syncd.store import session_scope  # noqa: E402
from syncd.store.engine import make_engine, upgrade  # noqa: E402
from syncd.store.models import Membership  # noqa: E402
from tests.conftest import drop_pg_schema, make_pg_engine_with_schema, pg_schema_url  # noqa: E402
from tests.service.test_membership_scale import bulk_team  # noqa: E402

DIRECTORY = "entra"  # bulk_team seeds this directory
ACTOR = Actor("scim", DIRECTORY, "bench")
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
#: Seeded users per client slice and seeded groups; enough that no slice runs out of pairs.
SLICE_USERS, GROUPS = 40, 40
#: Unmeasured requests sent before each backend's first level (connections, caches, JIT-free
#: warm paths in SQLAlchemy's statement cache).
WARMUP_REQUESTS = 200
EXPECTED = {"filter": 200, "create": 201, "add": 204, "remove": 204}


# ---------------------------------------------------------------- server


@contextlib.contextmanager
def syncd_serve(store_url: str, workdir: Path, *, workers: int = 1) -> Iterator[tuple[str, int]]:
    """`syncd serve` on a free loopback port (`workers` processes); yields (base URL of
    /scim/v2, pid of the serving process, the workers' parent when there are several)."""
    port = free_port()
    cfg = workdir / "config.toml"
    cfg.write_text(
        f'state_dir = "{workdir / "state"}"\n'
        f"[store]\nurl = {orjson.dumps(store_url).decode()}\n"
        f'[server]\nlisten = "127.0.0.1:{port}"\n'
        + (f"workers = {workers}\n" if workers > 1 else "")
        + '[log]\nlevel = "warning"\n'
    )
    log = (workdir / "serve.log").open("wb")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--config", str(cfg)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/scim/v2"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"syncd serve exited {proc.returncode}: {(workdir / 'serve.log').read_text()}"
                )
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/ServiceProviderConfig", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("syncd serve did not answer within 60 s")
            time.sleep(0.1)
        yield base, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot (Linux /proc/stat), zeros where unavailable."""
    try:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return float(sum(ticks) - idle), float(sum(ticks))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` (Linux /proc), 0.0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- seeding


@dataclass
class Seed:
    token: str
    slices: list[list[tuple[str, str]]]  # per client: [(user id, userName)]
    groups: list[str]


def seed(engine: Engine, clients: int) -> Seed:
    """A token of DIRECTORY, `clients` slices of users and GROUPS empty groups, via the service."""
    with session_scope(engine) as s:
        _, secret = tokens.create_token(s, directory=DIRECTORY, name="bench")
    slices: list[list[tuple[str, str]]] = []
    with session_scope(engine) as s:
        for c in range(clients):
            part = []
            for i in range(SLICE_USERS):
                name = f"pool-{c}-{i}@contoso.com"
                row = users.create_user(s, actor=ACTOR, body=entra_user(name))
                part.append((row.id, name))
            slices.append(part)
        groups = [
            teams.create_team(s, actor=ACTOR, body={"schemas": [CORE_GROUP], "displayName": f"team-{g}"}).id
            for g in range(GROUPS)
        ]
    return Seed(secret, slices, groups)


def entra_user(user_name: str) -> dict[str, object]:
    """A user as Entra's provisioning service POSTs it."""
    local = user_name.split("@", 1)[0]
    return {
        "schemas": [CORE_USER, ENTERPRISE],
        "externalId": str(uuid.uuid4()),
        "userName": user_name,
        "active": True,
        "displayName": local,
        "emails": [{"primary": True, "type": "work", "value": user_name}],
        "name": {"formatted": local, "familyName": "Bench", "givenName": local},
        "meta": {"resourceType": "User"},
        ENTERPRISE: {"department": "Bench"},
    }


def members_patch(op: str, user_id: str) -> dict[str, object]:
    return {
        "schemas": [PATCH_OP],
        "Operations": [{"op": op, "path": "members", "value": [{"value": user_id}]}],
    }


# ---------------------------------------------------------------- load


@dataclass
class ClientState:
    """One simulated client's own users and the memberships it added (still present)."""

    users: list[tuple[str, str]]
    added: set[tuple[str, str]] = field(default_factory=set)
    created: int = 0


@dataclass
class Samples:
    latency_ms: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in EXPECTED})
    errors: list[str] = field(default_factory=list)

    @property
    def all(self) -> list[float]:
        return [v for vs in self.latency_ms.values() for v in vs]


class Budget:
    """Shared stop condition of one level: a deadline and a request count."""

    def __init__(self, seconds: float, requests: int) -> None:
        self.deadline = time.monotonic() + seconds
        self.left = requests

    def take(self) -> bool:
        if self.left <= 0 or time.monotonic() >= self.deadline:
            return False
        self.left -= 1
        return True


async def one_request(
    http: httpx.AsyncClient, rng: random.Random, st: ClientState, seed_: Seed, tag: str
) -> tuple[str, httpx.Response, float]:
    roll = rng.random()
    if roll < 0.5:
        op = "filter"
        name = rng.choice(st.users)[1] if rng.random() < 0.8 else f"{uuid.uuid4()}@contoso.com"
        t0 = time.perf_counter()
        resp = await http.get("/Users", params={"filter": f'userName eq "{name}"'})
    elif roll < 0.7:
        op = "create"
        st.created += 1
        body = entra_user(f"new-{tag}-{st.created}@contoso.com")
        t0 = time.perf_counter()
        resp = await http.post("/Users", json=body)
    else:
        if st.added and rng.random() < 0.5:
            op = "remove"
            group, user = rng.choice(sorted(st.added))
            st.added.discard((group, user))
        else:
            op = "add"
            while True:
                group, user = rng.choice(seed_.groups), rng.choice(st.users)[0]
                if (group, user) not in st.added:
                    break
            st.added.add((group, user))
        body = members_patch("Add" if op == "add" else "Remove", user)
        t0 = time.perf_counter()
        resp = await http.patch(f"/Groups/{group}", json=body)
    return op, resp, (time.perf_counter() - t0) * 1000


async def client_loop(
    http: httpx.AsyncClient,
    budget: Budget,
    st: ClientState,
    seed_: Seed,
    rng: random.Random,
    tag: str,
    out: Samples,
) -> None:
    while budget.take():
        op, resp, ms = await one_request(http, rng, st, seed_, tag)
        if resp.status_code != EXPECTED[op]:
            out.errors.append(f"{op} {resp.status_code} {resp.text[:200]}")
            continue
        out.latency_ms[op].append(ms)


async def run_level(
    base: str, seed_: Seed, states: list[ClientState], level: int, seconds: float, requests: int, tag: str
) -> tuple[Samples, float]:
    """Drive `level` clients until the budget is spent; (samples, wall seconds)."""
    limits = httpx.Limits(max_connections=level, max_keepalive_connections=level)
    headers = {"Authorization": f"Bearer {seed_.token}", "Content-Type": "application/scim+json"}
    out = Samples()
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60) as http:
        budget = Budget(seconds, requests)
        t0 = time.perf_counter()
        await asyncio.gather(
            *(
                client_loop(http, budget, states[c], seed_, random.Random(f"{tag}-{c}"), f"{tag}-{c}", out)
                for c in range(level)
            )
        )
        wall = time.perf_counter() - t0
    return out, wall


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    s = sorted(values)
    return s[max(0, min(len(s) - 1, round(q / 100 * len(s) + 0.5) - 1))]


# ---------------------------------------------------------------- big team


def seed_teams(engine: Engine, big: int, samples: int) -> None:
    """Teams `small` (100 members) and `big` (`big` members), each with `samples` more users
    that are not members yet (so every timed add is a real insert)."""
    bulk_team(engine, "small", 100 + samples, "s")
    bulk_team(engine, "big", big + samples, "b")
    with engine.begin() as c:
        for team, prefix, n in (("small", "s", 100), ("big", "b", big)):
            ids = [f"{prefix}-{n + i}" for i in range(samples)]
            c.execute(delete(Membership).where(Membership.team_id == team, Membership.user_id.in_(ids)))


def member_add_p50(base: str, token: str, big: int, samples: int) -> dict[str, float]:
    """p50 (ms) of one member Add over HTTP to each team, the two alternating, one connection."""
    times: dict[str, list[float]] = {"small": [], "big": []}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
        for i in range(samples):
            for team, prefix, n in (("small", "s", 100), ("big", "b", big)):
                body = members_patch("Add", f"{prefix}-{n + i}")
                t0 = time.perf_counter()
                resp = http.patch(f"/Groups/{team}", json=body)
                ms = (time.perf_counter() - t0) * 1000
                if resp.status_code != 204:
                    raise RuntimeError(f"member add to {team}: {resp.status_code} {resp.text[:300]}")
                times[team].append(ms)
    small, large = statistics.median(times["small"]), statistics.median(times["big"])
    return {
        "add_p50_ms_team_100": round(small, 2),
        f"add_p50_ms_team_{big}": round(large, 2),
        "add_ratio": round(large / small, 2),
    }


# ---------------------------------------------------------------- one backend


def bench_backend(name: str, engine: Engine, store_url: str, args: argparse.Namespace) -> dict[str, object]:
    levels = [int(x) for x in args.levels.split(",")]
    upgrade(engine)
    sd = seed(engine, max(levels))
    states = [ClientState(users=part) for part in sd.slices]
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as d, syncd_serve(store_url, Path(d)) as (base, pid):
        warm, _ = asyncio.run(run_level(base, sd, states, 4, 60, WARMUP_REQUESTS, f"{name}-warm"))
        if warm.errors:
            raise RuntimeError(f"{name} warm-up errors: {warm.errors[:3]}")
        for level in levels:
            cpu_srv, cpu_me, busy0 = cpu_seconds(pid), time.process_time(), machine_busy()
            res, wall = asyncio.run(
                run_level(base, sd, states, level, args.seconds, args.max_requests, f"{name}-c{level}")
            )
            cpu_srv, cpu_me, busy1 = cpu_seconds(pid) - cpu_srv, time.process_time() - cpu_me, machine_busy()
            machine = (busy1[0] - busy0[0]) / max(busy1[1] - busy0[1], 1.0)
            lat = res.all
            key = f"{name}_c{level}"
            out[f"{key}_rps"] = round(len(lat) / wall, 1)
            out[f"{key}_p50_ms"] = round(pct(lat, 50), 2)
            out[f"{key}_p99_ms"] = round(pct(lat, 99), 2)
            if res.errors:
                out[f"{key}_errors"] = len(res.errors)
            per_op = {op: round(pct(v, 50), 2) for op, v in res.latency_ms.items() if v}
            print(
                f"{key}: {len(lat)} ok / {len(res.errors)} errors in {wall:.1f} s; p50 per op {per_op}; "
                f"CPU server {cpu_srv / wall:.0%}, load generator {cpu_me / wall:.0%} of one core; "
                f"machine {machine:.0%} of {os.cpu_count()} cores busy",
                file=sys.stderr,
            )
            for e in res.errors[:3]:
                print(f"  error: {e}", file=sys.stderr)
        t0 = time.perf_counter()
        seed_teams(engine, args.big, args.samples)
        print(
            f"{name}: seeded teams of 100 and {args.big} in {time.perf_counter() - t0:.1f} s", file=sys.stderr
        )
        out.update(
            {f"{name}_{k}": v for k, v in member_add_p50(base, sd.token, args.big, args.samples).items()}
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=15, help="longest time per level (s)")
    ap.add_argument("--max-requests", type=int, default=20_000, help="most requests per level")
    ap.add_argument("--levels", default="1,8,32", help="concurrent clients, comma-separated")
    ap.add_argument("--big", type=int, default=100_000, help="members of the big team")
    ap.add_argument("--samples", type=int, default=200, help="timed member adds per team")
    ap.add_argument("--backends", default="sqlite,postgres", help="stores to run on, comma-separated")
    args = ap.parse_args()
    backends = args.backends.split(",")
    result: dict[str, object] = {
        "mix": "50% filter GET, 20% user POST, 30% member PATCH (add/remove)",
        "per_level": f"{args.seconds:g} s or {args.max_requests} requests",
        "big_team": args.big,
        "samples": args.samples,
        # the machine is shared: its load says how far the figures are from an idle machine
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
    }
    if "sqlite" in backends:
        run_sqlite(args, result)
    if "postgres" in backends:
        run_postgres(args, result)
    result["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(orjson.dumps(result).decode())


def run_sqlite(args: argparse.Namespace, result: dict[str, object]) -> None:
    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{d}/bench.db"
        eng = make_engine(url)
        try:
            result.update(bench_backend("sqlite", eng, url, args))
        finally:
            eng.dispose()


def run_postgres(args: argparse.Namespace, result: dict[str, object]) -> None:
    try:
        eng, schema = make_pg_engine_with_schema()
    except Exception as exc:  # PostgreSQL not reachable: report SQLite only
        result["postgres"] = f"skipped: {type(exc).__name__}"
    else:
        try:
            result.update(bench_backend("postgres", eng, pg_schema_url(schema), args))
        finally:
            eng.dispose()
            drop_pg_schema(schema)


if __name__ == "__main__":
    main()
