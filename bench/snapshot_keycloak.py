"""Benchmark: a full Keycloak snapshot through `KeycloakConnector` against the fake Keycloak.

    python bench/snapshot_keycloak.py [--users N --groups N --members N] [--concurrency N]
                                      [--page-size N] [--compare-sdk N]

The fake runs in a subprocess (this script with ``--serve``) so serving and reading do not
share one GIL; it is built from the same seeded tenant (nested groups: chains of depth 2 from
every tenth group) and warmed before anything is timed. Then, in this process:

1. ``snapshot_s``: ``KeycloakConnector.snapshot()`` (python-keycloak's connection manager:
   client-credentials token, headers, renewal; over the connector's aiohttp transport; orjson
   on the page bytes);
2. ``floor_s``: a minimal raw aiohttp client reading the same pages (top-level groups,
   `/children`, `/members`, `/users`, same `max`, same concurrency), orjson, ids only, no
   nesting expansion;
3. ``floor_httpx_s``: the same reads over a bare ``httpx.AsyncClient``, python-keycloak's own
   transport (why the connector swaps it for aiohttp: compare ``floor_httpx_cpu_s``).

``peak_rss_mb`` is ``getrusage(RUSAGE_SELF).ru_maxrss`` right after the snapshot. CPU seconds of
this process and of the server are reported too (wall time swings on a shared machine).
``--compare-sdk N`` also times N groups' member lists through ``KeycloakAdmin.a_get_group_members``
(the SDK's high-level method) and through the connector's request path. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.snapshot_okta import server_cpu

REALM, CLIENT, SECRET = "bench", "syncd-bench", "bench-secret"


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from connectors.testing.keycloak import FakeKeycloak
    from connectors.testing.tenant import generate

    tenant = generate(users=args.users, groups=args.groups, members_per_group=args.members)
    fake = FakeKeycloak(tenant, realm=REALM, client_id=CLIENT, client_secret=SECRET, token_lifetime=3600)
    fake.index()
    expected = sum(len(tenant.transitive_user_ids(g)) for g in tenant.groups)
    print(orjson.dumps({"memberships": expected, "direct": tenant.membership_count}).decode(), flush=True)
    uvicorn.run(
        fake.app(),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        lifespan="off",
        access_log=False,
        backlog=4096,
    )


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str, dict[str, int]]:
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
    counts = orjson.loads(proc.stdout.readline())
    url = f"http://127.0.0.1:{port}"
    import httpx

    for _ in range(400):
        try:
            httpx.get(url + "/admin/realms/x", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    return proc, url, counts


async def floor(url: str, concurrency: int, page_size: int) -> tuple[int, int, int]:
    """Raw aiohttp over the same pages; returns (requests, users, direct memberships)."""
    import aiohttp

    calls = users = members = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency + 2)) as http:
        async with http.post(
            f"{url}/realms/{REALM}/protocol/openid-connect/token",
            data={"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET},
        ) as r:
            token = orjson.loads(await r.read())["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        base = f"{url}/admin/realms/{REALM}"
        sem = asyncio.Semaphore(concurrency)
        tasks: list[asyncio.Task[None]] = []

        async def pages(path: str, limited: bool) -> Any:
            nonlocal calls
            first = 0
            while True:
                params = {"first": first, "max": page_size, "briefRepresentation": "true"}
                if limited:
                    async with sem, http.get(base + path, params=params, headers=headers) as r:
                        body = await r.read()
                else:
                    async with http.get(base + path, params=params, headers=headers) as r:
                        body = await r.read()
                calls += 1
                items = orjson.loads(body)
                yield items
                if len(items) < page_size:
                    return
                first += len(items)

        async def group(g: dict[str, Any]) -> None:
            nonlocal members
            async for items in pages(f"/groups/{g['id']}/members", True):
                members += len([o["id"] for o in items])
            if g.get("subGroupCount"):
                async for items in pages(f"/groups/{g['id']}/children", True):
                    tasks.extend(asyncio.create_task(group(c)) for c in items)

        async def groups() -> None:
            async for items in pages("/groups", False):
                tasks.extend(asyncio.create_task(group(g)) for g in items)

        async def read_users() -> None:
            nonlocal users
            async for items in pages("/users", False):
                users += len([o["id"] for o in items])

        await asyncio.gather(groups(), read_users())
        while tasks:
            batch = tasks[:]
            tasks.clear()
            await asyncio.gather(*batch)
    return calls, users, members


async def floor_httpx(url: str, concurrency: int, page_size: int) -> int:
    """The same reads over a bare `httpx.AsyncClient` (python-keycloak's transport); returns
    the requests made. Separates the transport's cost from the SDK's and the connector's."""
    import httpx

    calls = 0
    limits = httpx.Limits(max_connections=concurrency + 2, max_keepalive_connections=concurrency + 2)
    async with httpx.AsyncClient(limits=limits, trust_env=False, verify=False) as http:
        r = await http.post(
            f"{url}/realms/{REALM}/protocol/openid-connect/token",
            data={"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET},
        )
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        base = f"{url}/admin/realms/{REALM}"
        sem = asyncio.Semaphore(concurrency)
        tasks: list[asyncio.Task[None]] = []

        async def pages(path: str, limited: bool) -> Any:
            nonlocal calls
            first = 0
            while True:
                params = {"first": first, "max": page_size, "briefRepresentation": "true"}
                if limited:
                    async with sem:
                        body = (await http.get(base + path, params=params, headers=headers)).content
                else:
                    body = (await http.get(base + path, params=params, headers=headers)).content
                calls += 1
                items = orjson.loads(body)
                yield items
                if len(items) < page_size:
                    return
                first += len(items)

        async def group(g: dict[str, Any]) -> None:
            async for items in pages(f"/groups/{g['id']}/members", True):
                assert [o["id"] for o in items] or not items
            if g.get("subGroupCount"):
                async for items in pages(f"/groups/{g['id']}/children", True):
                    tasks.extend(asyncio.create_task(group(c)) for c in items)

        async def groups() -> None:
            async for items in pages("/groups", False):
                tasks.extend(asyncio.create_task(group(g)) for g in items)

        async def read_users() -> None:
            async for items in pages("/users", False):
                assert [o["id"] for o in items] or not items

        await asyncio.gather(groups(), read_users())
        while tasks:
            batch = tasks[:]
            tasks.clear()
            await asyncio.gather(*batch)
    return calls


async def compare_sdk(url: str, n: int, page_size: int) -> tuple[float, float]:
    """Seconds per group: `KeycloakAdmin.a_get_group_members` vs the connector's request path."""
    from connectors.budget import Deadline
    from connectors.keycloak import KeycloakConnector
    from connectors.keycloak.reader import parse_list

    conn = KeycloakConnector("bench", server_url=url, realm=REALM, client_id=CLIENT, client_secret=SECRET)
    api = conn.api
    top = parse_list(
        await api.get(api.path("groups"), {"first": 0, "max": n}, what="groups", deadline=Deadline(600)),
        "groups",
    )
    gids = [g["id"] for g in top][:n]
    admin = api._admin
    assert admin is not None
    t0 = time.perf_counter()
    for gid in gids:
        assert isinstance(await admin.a_get_group_members(gid, {"briefRepresentation": True}), list)
    sdk = (time.perf_counter() - t0) / len(gids)
    t0 = time.perf_counter()
    for gid in gids:
        first = 0
        while True:
            items = parse_list(
                await api.get(
                    api.path(f"groups/{gid}/members"),
                    {"first": first, "max": page_size, "briefRepresentation": "true"},
                    what="members",
                    deadline=Deadline(600),
                ),
                "members",
            )
            assert {o["id"] for o in items} or not items
            if len(items) < page_size:
                break
            first += len(items)
    path = (time.perf_counter() - t0) / len(gids)
    await conn.aclose()
    return sdk, path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--groups", type=int, default=10_000)
    ap.add_argument("--members", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--page-size", type=int, default=500)
    ap.add_argument("--compare-sdk", type=int, default=0, metavar="N")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args)
        return

    from connectors.keycloak import KeycloakConnector

    proc, url, counts = start_server(args)
    try:
        got_snap: list[Any] = []

        async def snap() -> None:
            async with KeycloakConnector(
                "bench",
                server_url=url,
                realm=REALM,
                client_id=CLIENT,
                client_secret=SECRET,
                concurrency=args.concurrency,
                page_size=args.page_size,
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
        assert got == counts["memberships"] and len(s.users) == args.users, (got, counts)

        t0, c0, sc0 = time.perf_counter(), time.process_time(), server_cpu(proc.pid)
        calls, users, members = asyncio.run(floor(url, args.concurrency, args.page_size))
        floor_s = time.perf_counter() - t0
        floor_cpu, floor_server_cpu = time.process_time() - c0, server_cpu(proc.pid) - sc0
        assert users == args.users and members == counts["direct"], (users, members, counts)

        t0, c0 = time.perf_counter(), time.process_time()
        asyncio.run(floor_httpx(url, args.concurrency, args.page_size))
        floor_httpx_s, floor_httpx_cpu = time.perf_counter() - t0, time.process_time() - c0

        out: dict[str, Any] = {
            "kind": "keycloak",
            "users": len(s.users),
            "groups": len(s.groups),
            "memberships": got,
            "direct_memberships": members,
            "snapshot_s": round(snapshot_s, 2),
            "floor_s": round(floor_s, 2),
            "ratio": round(snapshot_s / floor_s, 2),
            "peak_rss_mb": round(peak, 1),
            "floor_httpx_s": round(floor_httpx_s, 2),
            "ratio_vs_httpx": round(snapshot_s / floor_httpx_s, 2),
            "api_calls": s.stats.api_calls,
            "floor_calls": calls,
            "concurrency": args.concurrency,
            "page_size": args.page_size,
            "rss_source": "getrusage(RUSAGE_SELF).ru_maxrss",
            "snapshot_cpu_s": round(snapshot_cpu, 2),
            "floor_cpu_s": round(floor_cpu, 2),
            "floor_httpx_cpu_s": round(floor_httpx_cpu, 2),
            "server_cpu_s": [round(snapshot_server_cpu, 2), round(floor_server_cpu, 2)],
        }
        if args.compare_sdk:
            sdk, path = asyncio.run(compare_sdk(url, args.compare_sdk, args.page_size))
            out["sdk_s_per_group"] = round(sdk, 4)
            out["path_s_per_group"] = round(path, 4)
        print(orjson.dumps(out).decode(), flush=True)
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
