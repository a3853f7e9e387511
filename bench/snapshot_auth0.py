"""Benchmark: a full Auth0 snapshot through `Auth0Connector` against the fake Auth0 tenant.

    python bench/snapshot_auth0.py [--users N --groups N --members N] [--concurrency N]

The fake runs in a subprocess (this script with ``--serve``), built from the same seeded
tenant and warmed (index, JSON bytes) before anything is timed. Then, in this process:

1. ``snapshot_s``: ``Auth0Connector.snapshot()`` (auth0-python's GetToken and its
   AsyncHttpClient request path; orjson on the bodies). Above 1,000 users the users come from
   a users-export job (POST, poll, download the gzip NDJSON); teams are organizations
   (``teams = "organizations"``: Auth0 allows 1,000 roles per tenant but 100,000 organizations,
   so only organizations can hold the L tenant's 10,000 teams), listed and their members read
   with checkpoints (``take`` 100);
2. ``floor_s``: a minimal raw aiohttp client reading the same requests (token, export job,
   polls at the same interval, file, organizations, member pages; same concurrency), orjson,
   ids only.

``peak_rss_mb`` is ``getrusage(RUSAGE_SELF).ru_maxrss`` right after the snapshot (the client
process only). CPU seconds are reported too (``snapshot_cpu_s``, ``floor_cpu_s``, and the
server's during each run). Prints one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.snapshot_okta import server_cpu

DOMAIN = "bench.us.auth0.com"
POLL = 0.2  # seconds between export job polls, for both readers


def serve(args: argparse.Namespace) -> None:
    """Child: generate the tenant, warm the fake, serve it on --port, print one ready line."""
    import uvicorn

    from connectors.testing.auth0 import FakeAuth0
    from connectors.testing.tenant import generate

    tenant = generate(users=args.users, groups=args.groups, members_per_group=args.members, nesting_depth=0)
    fake = FakeAuth0(tenant, domain=DOMAIN, export_polls=1)
    fake.index()
    print(orjson.dumps({"memberships": tenant.membership_count}).decode(), flush=True)
    uvicorn.run(
        fake.app(),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        lifespan="off",
        access_log=False,
        backlog=4096,
    )


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str, int]:
    from connectors.testing.server import free_port

    port = free_port()
    cmd = [
        sys.executable,
        __file__,
        "--serve",
        "--port",
        str(port),
        "--users",
        str(args.users),
        "--groups",
        str(args.groups),
        "--members",
        str(args.members),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    assert proc.stdout
    memberships = orjson.loads(proc.stdout.readline())["memberships"]
    url = f"http://127.0.0.1:{port}"
    import httpx

    for _ in range(400):
        try:
            httpx.get(url + "/api/v2/x", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    return proc, url, memberships


async def floor(url: str, concurrency: int) -> tuple[int, int, int]:
    """Raw aiohttp over the same requests; returns (requests, users, memberships)."""
    import aiohttp

    from connectors.auth0.reader import EXPORT_FIELDS
    from connectors.testing.auth0 import FakeAuth0

    creds = FakeAuth0(None)
    calls = users = members = 0
    conn = aiohttp.TCPConnector(limit=concurrency + 2)
    async with aiohttp.ClientSession(connector=conn) as http:
        async with http.post(
            f"{url}/oauth/token",
            json={
                "grant_type": "client_credentials",
                "client_id": creds.client_id,
                "client_secret": creds.client_secret,
                "audience": f"https://{DOMAIN}/api/v2/",
            },
        ) as r:
            calls += 1
            token = orjson.loads(await r.read())["access_token"]
        h = {"Authorization": f"Bearer {token}"}
        api = f"{url}/api/v2"

        async def get(path: str, params: dict[str, Any]) -> Any:
            nonlocal calls
            async with http.get(api + path, params=params, headers=h) as r:
                calls += 1
                return orjson.loads(await r.read())

        async def read_users() -> None:
            nonlocal users, calls
            first = await get("/users", {"page": 0, "per_page": 100, "include_totals": "true"})
            body = {"format": "json", "fields": [{"name": f} for f in EXPORT_FIELDS]}
            async with http.post(api + "/jobs/users-exports", json=body, headers=h) as r:
                calls += 1
                job = orjson.loads(await r.read())
            assert first["total"] > 1000
            while job.get("status") != "completed":
                await asyncio.sleep(POLL)
                job = await get(f"/jobs/{job['id']}", {})
            async with http.get(job["location"]) as r:
                calls += 1
                data = gzip.decompress(await r.read())
            users = len([orjson.loads(x)["user_id"] for x in data.splitlines() if x])

        sem = asyncio.Semaphore(concurrency)

        async def read_members(rid: str) -> None:
            nonlocal members
            async with sem:
                params: dict[str, Any] = {"take": 100}
                while True:
                    doc = await get(f"/organizations/{rid}/members", params)
                    members += len({m["user_id"] for m in doc["members"]})
                    if not doc["members"] or "next" not in doc:
                        return
                    params = {"take": 100, "from": doc["next"]}

        async def read_orgs() -> None:
            tasks, params = [], {"take": 100}
            while True:
                doc = await get("/organizations", params)
                tasks += [asyncio.create_task(read_members(o["id"])) for o in doc["organizations"]]
                if not doc["organizations"] or "next" not in doc:
                    break
                params = {"take": 100, "from": doc["next"]}
            await asyncio.gather(*tasks)

        await asyncio.gather(read_users(), read_orgs())
    return calls, users, members


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--groups", type=int, default=10_000)
    ap.add_argument("--members", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args)
        return

    from connectors.auth0 import Auth0Connector
    from connectors.testing.auth0 import FakeAuth0

    defaults = FakeAuth0(None)  # the fake's default credentials
    proc, url, memberships = start_server(args)
    try:
        got_snap: list[Any] = []

        async def snap() -> None:
            async with Auth0Connector(
                "bench",
                domain=DOMAIN,
                client_id=defaults.client_id,
                client_secret=defaults.client_secret,
                base_url=url,
                concurrency=args.concurrency,
                export_poll_interval=POLL,
                time_budget=3600.0,
                teams="organizations",
            ) as conn:
                got_snap.append(await conn.snapshot())

        t0, c0, sc0 = time.perf_counter(), time.process_time(), server_cpu(proc.pid)
        asyncio.run(snap())
        s = got_snap[0]
        snapshot_s = time.perf_counter() - t0
        snapshot_cpu, snapshot_server_cpu = time.process_time() - c0, server_cpu(proc.pid) - sc0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        assert s.complete, s.problems[:3]
        got = sum(len(g.member_ids) for g in s.groups.values())
        assert got == memberships and len(s.users) == args.users, (got, memberships)

        t0, c0, sc0 = time.perf_counter(), time.process_time(), server_cpu(proc.pid)
        calls, users, members = asyncio.run(floor(url, args.concurrency))
        floor_s = time.perf_counter() - t0
        floor_cpu, floor_server_cpu = time.process_time() - c0, server_cpu(proc.pid) - sc0
        assert users == args.users and members == memberships, (users, members)

        out: dict[str, Any] = {
            "kind": "auth0",
            "users": len(s.users),
            "groups": len(s.groups),
            "memberships": got,
            "snapshot_s": round(snapshot_s, 2),
            "floor_s": round(floor_s, 2),
            "ratio": round(snapshot_s / floor_s, 2),
            "peak_rss_mb": round(peak, 1),
            "api_calls": s.stats.api_calls,
            "floor_calls": calls,
            "concurrency": args.concurrency,
            "rss_source": "getrusage(RUSAGE_SELF).ru_maxrss",
            "snapshot_cpu_s": round(snapshot_cpu, 2),
            "floor_cpu_s": round(floor_cpu, 2),
            "server_cpu_s": [round(snapshot_server_cpu, 2), round(floor_server_cpu, 2)],
        }
        print(orjson.dumps(out).decode(), flush=True)
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
