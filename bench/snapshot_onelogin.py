"""Benchmark: a full OneLogin snapshot through `OneLoginConnector` against the fake account.

    python bench/snapshot_onelogin.py [--users N --groups N --members N] [--concurrency N]
                                      [--compare-models N]

The fake runs in a subprocess (this script with ``--serve``), built from the same seeded tenant
(its groups are OneLogin roles) and warmed before anything is timed. Then, in this process:

1. ``snapshot_s``: ``OneLoginConnector.snapshot()`` (teams = roles): the SDK's token request,
   its ``ApiClient.call_api`` URL building and auth header, its urllib3 transport, in
   ``concurrency + 2`` threads; orjson on the page text;
2. ``floor_s``: a minimal raw aiohttp client reading the same pages (users and roles paged by
   ``After-Cursor`` at OneLogin's maximum of 100, ``concurrency`` role member lists at once),
   orjson, ids only.

``peak_rss_mb`` is ``getrusage(RUSAGE_SELF).ru_maxrss`` right after the snapshot (the whole
client process). CPU seconds are reported too: this process's and the server's during each run.
``--compare-models N`` also times N roles' member lists through the SDK's generated
``RolesApi.get_role_users`` (pydantic ``User`` models) and through the connector's request path.
Prints one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.snapshot_okta import server_cpu

CID, SECRET = "bench-onelogin-client", "bench-onelogin-secret"


def serve(args: argparse.Namespace) -> None:
    """Child: generate the tenant, warm the fake, serve it on --port, print one ready line."""
    import uvicorn

    from connectors.testing.onelogin import FakeOneLogin
    from connectors.testing.tenant import generate

    tenant = generate(users=args.users, groups=args.groups, members_per_group=args.members, nesting_depth=0)
    fake = FakeOneLogin(tenant, client_id=CID, client_secret=SECRET)
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
    import httpx

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
    for _ in range(400):
        try:
            httpx.get(url + "/api/2/users", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    return proc, url, memberships


async def floor(url: str, concurrency: int) -> tuple[int, int, int]:
    """Raw aiohttp over the same pages; returns (requests, users, memberships)."""
    import aiohttp

    calls = users = members = 0
    conn = aiohttp.TCPConnector(limit=concurrency + 2)
    async with aiohttp.ClientSession(connector=conn) as http:
        basic = base64.b64encode(f"{CID}:{SECRET}".encode()).decode()
        async with http.post(
            f"{url}/auth/oauth2/v2/token",
            headers={"Authorization": f"Basic {basic}"},
            json={"grant_type": "client_credentials"},
        ) as r:
            token = (await r.json())["access_token"]
        calls += 1
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

        async def pages(path: str) -> Any:
            nonlocal calls
            cursor = None
            while True:
                params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
                async with http.get(url + path, params=params, headers=headers) as r:
                    calls += 1
                    items = orjson.loads(await r.read())
                    cursor = r.headers.get("After-Cursor")
                yield items
                if not cursor:
                    return

        async def read_users() -> None:
            nonlocal users
            async for items in pages("/api/2/users"):
                users += len([o["id"] for o in items])

        sem = asyncio.Semaphore(concurrency)

        async def read_members(rid: int) -> None:
            nonlocal members
            async with sem:
                async for items in pages(f"/api/2/roles/{rid}/users"):
                    members += len({o["id"] for o in items})

        async def read_roles() -> None:
            tasks = []
            async for items in pages("/api/2/roles"):
                tasks += [asyncio.create_task(read_members(o["id"])) for o in items]
            await asyncio.gather(*tasks)

        await asyncio.gather(read_users(), read_roles())
    return calls, users, members


def compare_models(url: str, n: int) -> tuple[float, float]:
    """Seconds per role: SDK generated method (models) vs the connector's request path."""
    from onelogin.api.roles_api import RolesApi

    from connectors.budget import Deadline
    from connectors.onelogin import OneLoginConnector
    from connectors.onelogin.snapshot import iterate_v2

    conn = OneLoginConnector("bench", base_url=url, client_id=CID, client_secret=SECRET)
    api = conn.api
    api._fetch_token(force=False)
    rids = [r["id"] for r in orjson.loads(api._get_sync("/api/2/roles", [("limit", n)], None, "roles").body)][
        :n
    ]
    roles = RolesApi(api.client)
    t0 = time.perf_counter()
    for rid in rids:
        assert roles.get_role_users(str(rid), limit=100) is not None
    models = (time.perf_counter() - t0) / len(rids)

    async def ours() -> None:
        for rid in rids:
            async for items in iterate_v2(
                api,
                "/api/2/roles/{role_id}/users",
                what="members",
                deadline=Deadline(600),
                limit=100,
                path_params={"role_id": rid},
            ):
                assert {o["id"] for o in items}

    t0 = time.perf_counter()
    asyncio.run(ours())
    path = (time.perf_counter() - t0) / len(rids)
    api.close()
    return models, path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--groups", type=int, default=10_000)
    ap.add_argument("--members", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--compare-models", type=int, default=0, metavar="N")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args)
        return

    from connectors.onelogin import OneLoginConnector

    proc, url, memberships = start_server(args)
    try:
        got_snap: list[Any] = []

        async def snap() -> None:
            async with OneLoginConnector(
                "bench", base_url=url, client_id=CID, client_secret=SECRET, concurrency=args.concurrency
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
        assert users == args.users and members == memberships

        out: dict[str, Any] = {
            "kind": "onelogin",
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
        if args.compare_models:
            models, path = compare_models(url, args.compare_models)
            out["models_s_per_role"] = round(models, 4)
            out["path_s_per_role"] = round(path, 4)
        print(orjson.dumps(out).decode(), flush=True)
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
