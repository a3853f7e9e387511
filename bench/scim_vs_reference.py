"""Benchmark: syncd's SCIM endpoint side by side with `scim2-server`, the independent reference.

    python bench/scim_vs_reference.py [--pairs 1500] [--seconds 20] [--levels 1,8,32]
                                      [--seed-users 500] [--pg-workers 2] [--sqlite-workers 2]

Servers, each in its own subprocess on 127.0.0.1, all started before the first level:

    reference       `scim2-server --bearer-token T` (python-scim, in memory, threaded WSGI)
    sqlite          `syncd serve` over a migrated SQLite file
    sqlite_wN       the same over its own file, `[server] workers = N` (only with --sqlite-workers > 1)
    postgres        `syncd serve` over a fresh schema of PostgreSQL's `test` database
    postgres_wN     the same store, `[server] workers = N` (only with --pg-workers > 1)

The workload is the one an IdP's provisioning cycle sends for a new user: a pair of
`GET /Users?filter=userName eq "<name>"` (answered with no match) then `POST /Users` (Entra's
body) of that name. Each server first gets `--seed-users` users by POST (unmeasured), then for
each level (`level` concurrent clients over one aiohttp session, one request at a time each)
the servers take their turn, one after the other, so a noisy neighbour on this shared machine
hits all of them alike. A level ends after `--pairs` pairs or `--seconds`, whichever first;
every server sees the same requests in the same order per client.

Reported per server and level: req/s (both halves of a pair count), p50/p99 of single
requests (ms, measured by the client), the server's CPU milliseconds per request (all its
processes; the figure least disturbed by other load on the machine), the load generator's CPU
milliseconds per request (this process; it shares the two cores with the server), PostgreSQL's
CPU milliseconds per request for the servers on it (every process of the `postgres` user), and each
syncd server's req/s ÷ the reference's. Prints one JSON line; per-server CPU use goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scim_load import cpu_seconds, entra_user, pct, syncd_serve  # noqa: E402
from connectors.testing.server import free_port  # noqa: E402
from syncd.service import tokens  # noqa: E402
from syncd.store import session_scope  # noqa: E402
from syncd.store.engine import make_engine, upgrade  # noqa: E402
from tests.conftest import drop_pg_schema, make_pg_engine_with_schema, pg_schema_url  # noqa: E402

#: Where the time goes (profiled in-process: the ASGI app driven directly with the threadpool
#: inlined, cProfile and process CPU time; SQLite), recorded with the figures.
NOTE = (
    "Bar: >= 2x the reference's req/s at 8 and 32 clients, p99 <= 250 ms at 32. The write path: a "
    "user create on SQLite is one `INSERT ... ON CONFLICT DO NOTHING RETURNING id` plus Core "
    "INSERTs of its email, audit and change-feed rows, every hot statement prebuilt; on PostgreSQL "
    "it is one writable CTE sent in autocommit (user, emails, audit event, change with its xid, "
    "pg_notify: one round trip, where it was eight), and a pooled connection is checked by a "
    "zero-timeout poll of its socket at checkout instead of a pre-ping query. A filter on a "
    "unique key is one prebuilt Core SELECT on a connection (no ORM session, no entity loading), "
    "planned on that key's unique index even on a new table (each unique index leads with its "
    "key, migration 0008: before it, PostgreSQL read the whole directory per lookup on a new "
    "store, about 2,400 index tuples a lookup by the end of this benchmark, and the database's "
    "CPU per request grew from 0.44 to 1.44 ms over three levels). On PostgreSQL the filter and "
    "the create are awaited on the event loop through psycopg's async driver (`store.aio`), "
    "the same service code without the threadpool hop: 1.00 -> 0.83 ms of server CPU per "
    "request, 940 -> 1,185 req/s with one worker. On SQLite the same two run on the loop's own "
    "thread (`store.inline`): the filter always (a WAL reader never waits), the create when the "
    "writer turn is free (polled on the loop for up to 50 ms, else queued in a worker thread as "
    "before): 1.27 -> 0.77 ms of server CPU per request, 790 -> 1,180-1,245 req/s at 8 clients "
    "with one worker. Both pools keep the connections they open "
    "(20, no overflow): with 10 kept and 10 in overflow, each burst at 32 clients opened new "
    "server backends, 0.9 ms of PostgreSQL CPU a request where it is 0.2-0.3 ms. "
    "The HTTP side: GET/POST on /Users and /Groups find their route by one dict lookup "
    "(`scim.hot`), and every SCIM route resolves its inputs by hand (`scim.route.ScimRoute`: "
    "token, context, body, list/shape query, If-(None-)Match, path ids), inside the same error "
    "funnel. sqlite_wN: `[server] workers = N` on SQLite, the workers' writers queued on a file "
    "lock next to the database (`store.writer_queue`), reads in parallel; a worker's inline "
    "writes wait in one line on its loop, and across workers the oldest waiting writer goes "
    "first (before, the worker that had just committed won the free lock almost every time: one "
    "worker took twice the other's writes, one write in ten waited out the 50 ms inline limit, "
    "p99 at 32 clients 76-94 ms; after, 28-46 ms side by side). Each worker freezes its startup "
    "heap (`gc.freeze`, `syncd.heap`): a full collection walked its ~140k startup objects for "
    "70-90 ms on the loop, and every request in flight waited (PostgreSQL at 32 clients: p99 "
    "110-118 ms, after 31-40 ms). Where a request's time "
    "went before the inline path (SQLite): the service plus its session ~0.4 ms, uvicorn's HTTP "
    "handling ~0.15 ms, middleware ~0.05 ms, and the threadpool hop with its GIL hand-overs "
    "~0.5 ms (measured by taking it away; profiling with the pool inlined had shown 0.1 ms). "
    "uvicorn parses HTTP with httptools. scim2-server keeps users in a "
    "dict (no disk, audit or feed) and serves with a threaded WSGI server. "
    "client_cpu_ms_per_req is the load generator's own CPU (one process; the reference costs it "
    "more per request); db_cpu_ms_per_req is PostgreSQL's (all its processes). What would go "
    "further: the SQLite create on a Core connection, fewer "
    "middleware layers (FastAPI's and syncd's body limits, the health wrapper), and idle cores: "
    "on this shared 2-core machine the database, the server and the load generator compete."
)
DIRECTORY = "entra"
REFERENCE_TOKEN = "bench-reference-token"
WARMUP_PAIRS = 100


@dataclass
class Server:
    name: str
    base: str  # URL of the SCIM root, no trailing /
    token: str
    pid: int


# ---------------------------------------------------------------- servers


def reference_bin() -> str:
    found = shutil.which("scim2-server") or str(Path(sys.executable).with_name("scim2-server"))
    if not Path(found).exists():
        raise SystemExit("scim2-server is not installed (a dev dependency: pip install -e '.[dev]')")
    return found


def wait_ready(proc: subprocess.Popen[bytes], url: str, token: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.TransportError):
            headers = {"Authorization": f"Bearer {token}"}
            if httpx.get(url, headers=headers, timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within 60 s")
        time.sleep(0.1)


@contextlib.contextmanager
def reference_serve(workdir: Path) -> Iterator[Server]:
    """scim2-server with one static bearer token, on a free loopback port."""
    port = free_port()
    log_path = workdir / "reference.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [reference_bin(), "--hostname", "127.0.0.1", "--port", str(port), "--bearer-token", REFERENCE_TOKEN],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/v2"
    try:
        wait_ready(proc, f"{base}/ServiceProviderConfig", REFERENCE_TOKEN, log_path)
        yield Server("reference", base, REFERENCE_TOKEN, proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)  # its KeyboardInterrupt ends serve_forever cleanly
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def syncd_token(url: str) -> str:
    """Migrate the store at `url` and make a SCIM token of DIRECTORY in it."""
    engine = make_engine(url)
    try:
        upgrade(engine)
        with session_scope(engine) as s:
            _, secret = tokens.create_token(s, directory=DIRECTORY, name="bench")
    finally:
        engine.dispose()
    return secret


@contextlib.contextmanager
def syncd_server(name: str, url: str, workdir: Path, token: str, workers: int = 1) -> Iterator[Server]:
    d = workdir / name
    d.mkdir()
    with syncd_serve(url, d, workers=workers) as (base, pid):
        yield Server(name, base, token, pid)


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of `pid` and its descendants (a server's workers), Linux /proc."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += cpu_seconds(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in task.read_text().split()]
    return total


def db_cpu_seconds() -> float | None:
    """CPU seconds of every process of the local `postgres` user, with their exited children
    (the postmaster's reaped backends), Linux /proc; None where there is no such user."""
    try:
        uid = pwd.getpwnam("postgres").pw_uid
    except KeyError:
        return None
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if stat.parent.stat().st_uid != uid:
                continue
            f = stat.read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in f[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


# ---------------------------------------------------------------- load


@dataclass
class Result:
    latency_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    db_cpu_s: float | None = None


async def pair(http: aiohttp.ClientSession, srv: Server, name: str, out: Result) -> None:
    """GET the name by filter (no match expected), then POST the user."""
    t0 = time.perf_counter()
    async with http.get(f"{srv.base}/Users", params={"filter": f'userName eq "{name}"'}) as resp:
        body = await resp.read()
        ok = resp.status == 200 and orjson.loads(body).get("totalResults") == 0
    t1 = time.perf_counter()
    if not ok:
        out.errors.append(f"filter {resp.status} {body[:200]!r}")
        return
    data = orjson.dumps(entra_user(name))
    async with http.post(f"{srv.base}/Users", data=data) as resp:
        body = await resp.read()
        status = resp.status
    t2 = time.perf_counter()
    if status != 201:
        out.errors.append(f"create {status} {body[:200]!r}")
        return
    out.latency_ms += [(t1 - t0) * 1000, (t2 - t1) * 1000]


async def drive(srv: Server, clients: int, pairs: int, seconds: float, tag: str) -> Result:
    """`clients` concurrent clients send pairs until `pairs` are sent or `seconds` pass."""
    headers = {"Authorization": f"Bearer {srv.token}", "Content-Type": "application/scim+json"}
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    out = Result()
    left = pairs
    async with aiohttp.ClientSession(
        headers=headers, connector=connector, timeout=aiohttp.ClientTimeout(total=60)
    ) as http:
        deadline = time.monotonic() + seconds

        async def client(c: int) -> None:
            nonlocal left
            i = 0
            while left > 0 and time.monotonic() < deadline:
                left -= 1
                i += 1
                await pair(http, srv, f"{tag}-{c}-{i}@contoso.com", out)

        db0 = db_cpu_seconds()
        cpu0, t0, own0 = tree_cpu_seconds(srv.pid), time.perf_counter(), time.process_time()
        await asyncio.gather(*(client(c) for c in range(clients)))
        out.wall_s, out.cpu_s = time.perf_counter() - t0, tree_cpu_seconds(srv.pid) - cpu0
        out.client_cpu_s = time.process_time() - own0
        db1 = db_cpu_seconds()
        out.db_cpu_s = None if db0 is None or db1 is None else db1 - db0
    return out


# ---------------------------------------------------------------- run


def run(servers: list[Server], args: argparse.Namespace) -> dict[str, object]:
    levels = [int(x) for x in args.levels.split(",")]
    out: dict[str, object] = {}
    for srv in servers:  # the same seed and warm-up everywhere
        for tag, n in (("seed", args.seed_users), ("warm", WARMUP_PAIRS)):
            res = asyncio.run(drive(srv, 4, n, 600, tag))
            if res.errors:
                raise RuntimeError(f"{srv.name} {tag}: {res.errors[:3]}")
    for level in levels:
        rps: dict[str, float] = {}
        for srv in servers:
            res = asyncio.run(drive(srv, level, args.pairs, args.seconds, f"c{level}"))
            key = f"{srv.name}_c{level}"
            rps[srv.name] = len(res.latency_ms) / res.wall_s
            out[f"{key}_rps"] = round(rps[srv.name], 1)
            out[f"{key}_p50_ms"] = round(pct(res.latency_ms, 50), 2)
            out[f"{key}_p99_ms"] = round(pct(res.latency_ms, 99), 2)
            out[f"{key}_cpu_ms_per_req"] = round(res.cpu_s / max(len(res.latency_ms), 1) * 1000, 2)
            out[f"{key}_client_cpu_ms_per_req"] = round(
                res.client_cpu_s / max(len(res.latency_ms), 1) * 1000, 2
            )
            if srv.name.startswith("postgres") and res.db_cpu_s is not None:
                out[f"{key}_db_cpu_ms_per_req"] = round(res.db_cpu_s / max(len(res.latency_ms), 1) * 1000, 2)
            if res.errors:
                out[f"{key}_errors"] = len(res.errors)
            print(
                f"{key}: {len(res.latency_ms)} ok / {len(res.errors)} errors in {res.wall_s:.1f} s; "
                f"server CPU {res.cpu_s / res.wall_s:.0%} of one core (all its processes), "
                f"load generator {res.client_cpu_s / res.wall_s:.0%}",
                file=sys.stderr,
            )
            for e in res.errors[:3]:
                print(f"  error: {e}", file=sys.stderr)
        for srv in servers[1:]:
            out[f"ratio_{srv.name}_c{level}"] = round(rps[srv.name] / rps["reference"], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=1500, help="most filter+create pairs per level and server")
    ap.add_argument("--seconds", type=float, default=20, help="longest time per level and server (s)")
    ap.add_argument("--levels", default="1,8,32", help="concurrent clients, comma-separated")
    ap.add_argument("--seed-users", type=int, default=500, help="users created before the levels")
    ap.add_argument("--pg-workers", type=int, default=2, help="also run PostgreSQL with this many workers")
    ap.add_argument("--sqlite-workers", type=int, default=2, help="also run SQLite with this many workers")
    ap.add_argument("--backends", default="sqlite,postgres", help="syncd stores, comma-separated")
    args = ap.parse_args()
    backends = args.backends.split(",")
    result: dict[str, object] = {
        "workload": 'pairs of GET /Users?filter=userName eq "new" (no match) + POST /Users (Entra body)',
        "per_level": f"{args.pairs} pairs or {args.seconds:g} s per server",
        "seed_users": args.seed_users,
        "note": NOTE,
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
    }
    schemas: list[str] = []
    with tempfile.TemporaryDirectory() as d, contextlib.ExitStack() as stack:
        work = Path(d)
        servers = [stack.enter_context(reference_serve(work))]
        if "sqlite" in backends:
            sqlite_runs = [("sqlite", 1)] + (
                [(f"sqlite_w{args.sqlite_workers}", args.sqlite_workers)] if args.sqlite_workers > 1 else []
            )
            for name, workers in sqlite_runs:  # each its own file: the same store state as the others
                url = f"sqlite:///{work}/{name}.db"
                servers.append(
                    stack.enter_context(syncd_server(name, url, work, syncd_token(url), workers=workers))
                )
        if "postgres" in backends:
            pg_runs = [("postgres", 1)] + (
                [(f"postgres_w{args.pg_workers}", args.pg_workers)] if args.pg_workers > 1 else []
            )
            for name, workers in pg_runs:  # each its own schema: the same store state as the others
                try:
                    eng, schema = make_pg_engine_with_schema()
                    eng.dispose()
                except Exception as exc:  # PostgreSQL not reachable: report the others
                    result["postgres"] = f"skipped: {type(exc).__name__}"
                    break
                schemas.append(schema)
                url = pg_schema_url(schema)
                servers.append(
                    stack.enter_context(syncd_server(name, url, work, syncd_token(url), workers=workers))
                )
        try:
            result.update(run(servers, args))
        finally:
            stack.close()
            for schema in schemas:
                drop_pg_schema(schema)
    result["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
