"""Benchmark: a full Okta snapshot through `OktaConnector` against the fake Okta org.

    python bench/snapshot_okta.py [--users N --groups N --members N] [--concurrency N]
                                  [--compare-models N]

The fake runs in a subprocess (this script with ``--serve``): serving and reading do not
share one GIL. It is built from the same seeded tenant and warmed (index, JSON bytes, member
lists) before anything is timed. Then, in this process:

1. ``snapshot_s``: ``OktaConnector.snapshot()`` (the okta SDK's serializer, request executor,
   HTTP client and 429 retry; orjson on the page text);
2. ``floor_s``: a minimal raw aiohttp client reading the same pages (same filters, page sizes,
   concurrency: the user list alongside ``concurrency`` member lists), orjson, ids only.

``peak_rss_mb`` is ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` read right after the snapshot
(the whole client process: interpreter, SDK, snapshot; the tenant lives in the server process).
Wall times swing widely on a shared machine, so CPU seconds are reported too: this process's
(``snapshot_cpu_s``, ``floor_cpu_s``) and the server's during each run (``server_cpu_s``).
``--compare-models N`` also times N groups' member lists through the SDK's generated
``list_group_users`` (pydantic ``User`` models) and through the connector's request path, and
adds ``models_s_per_group`` / ``path_s_per_group``. Prints one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TOKEN = "bench-okta-api-token"


def serve(args: argparse.Namespace) -> None:
    """Child: generate the tenant, warm the fake, serve it on --port, print one ready line."""
    import uvicorn

    from connectors.testing.okta import FakeOkta
    from connectors.testing.tenant import generate

    tenant = generate(users=args.users, groups=args.groups, members_per_group=args.members)
    fake = FakeOkta(tenant, token=TOKEN)
    idx = fake.index(f"http://127.0.0.1:{args.port}")
    for gid in idx.group_ids:
        idx.members(gid)
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
            httpx.get(url + "/api/v1/users/x", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    return proc, url, memberships


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process `pid` (Linux /proc; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def next_link(headers: Any) -> str | None:
    from connectors.okta.paging import parse_links

    return parse_links(headers.getall("Link", [])).get("next")


async def floor(url: str, concurrency: int, page_size: int) -> tuple[int, int, int]:
    """Raw aiohttp over the same pages; returns (requests, users, memberships)."""
    import aiohttp

    from connectors.okta.reader import all_statuses_filter, any_of
    from connectors.okta.snapshot import GROUPS_MAX, MEMBERS_MAX, USERS_MAX

    calls = users = members = 0
    headers = {"Authorization": f"SSWS {TOKEN}", "Accept": "application/json"}
    conn = aiohttp.TCPConnector(limit=concurrency + 2)
    async with aiohttp.ClientSession(connector=conn, headers=headers) as http:

        async def pages(u: str, params: dict[str, Any] | None) -> Any:
            nonlocal calls
            while u:
                async with http.get(u, params=params) as r:
                    calls += 1
                    items = orjson.loads(await r.read())
                    u, params = next_link(r.headers), None
                yield items

        async def read_users() -> None:
            nonlocal users
            async for items in pages(
                f"{url}/api/v1/users", {"filter": all_statuses_filter(), "limit": min(page_size, USERS_MAX)}
            ):
                users += len([o["id"] for o in items])

        sem = asyncio.Semaphore(concurrency)

        async def read_members(gid: str) -> None:
            nonlocal members
            async with sem:
                async for items in pages(
                    f"{url}/api/v1/groups/{gid}/users", {"limit": min(page_size, MEMBERS_MAX)}
                ):
                    members += len({o["id"] for o in items})

        async def read_groups() -> None:
            tasks = []
            async for items in pages(
                f"{url}/api/v1/groups",
                {
                    "filter": f"({any_of('type', ('OKTA_GROUP', 'APP_GROUP'))})",
                    "limit": min(page_size, GROUPS_MAX),
                },
            ):
                tasks += [asyncio.create_task(read_members(g["id"])) for g in items]
            await asyncio.gather(*tasks)

        await asyncio.gather(read_users(), read_groups())
    return calls, users, members


async def compare_models(url: str, n: int) -> tuple[float, float]:
    """Seconds per group: SDK generated method (models) vs the connector's request path."""
    from connectors.budget import Deadline
    from connectors.okta import OktaConnector
    from connectors.okta.paging import iterate

    conn = OktaConnector("bench", base_url=url, token=TOKEN)
    api = conn.api
    sdk = await api._ready()
    groups = (
        await api.get(api.url("/api/v1/groups", {"limit": n}), what="groups", deadline=Deadline(600))
    ).body
    gids = [g["id"] for g in orjson.loads(groups)][:n]
    t0 = time.perf_counter()
    for gid in gids:
        users, _resp, err = await sdk.list_group_users(gid, limit=200)
        assert err is None and users is not None
    models = (time.perf_counter() - t0) / len(gids)
    t0 = time.perf_counter()
    for gid in gids:
        u = api.url("/api/v1/groups/{id}/users", {"limit": 200}, {"id": gid})
        async for items in iterate(api, u, what="members", deadline=Deadline(600)):
            assert {o["id"] for o in items}
    path = (time.perf_counter() - t0) / len(gids)
    await conn.aclose()
    return models, path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--groups", type=int, default=10_000)
    ap.add_argument("--members", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--page-size", type=int, default=200)
    ap.add_argument("--compare-models", type=int, default=0, metavar="N")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args)
        return

    from connectors.okta import OktaConnector

    proc, url, memberships = start_server(args)
    try:
        got_snap: list[Any] = []

        async def snap() -> None:
            # the snapshot is handed out through a list, not as asyncio.run's result: on
            # Python 3.11 asyncio.run's SIGINT-handler restore formats repr(main task), result
            # included (a full repr of 100k users, ~1.5 s), which is harness cost, not reading
            async with OktaConnector(
                "bench", base_url=url, token=TOKEN, concurrency=args.concurrency, page_size=args.page_size
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
        calls, users, members = asyncio.run(floor(url, args.concurrency, args.page_size))
        floor_s = time.perf_counter() - t0
        floor_cpu, floor_server_cpu = time.process_time() - c0, server_cpu(proc.pid) - sc0
        assert users == args.users and members == memberships

        out: dict[str, Any] = {
            "kind": "okta",
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
            models, path = asyncio.run(compare_models(url, args.compare_models))
            out["models_s_per_group"] = round(models, 4)
            out["path_s_per_group"] = round(path, 4)
        print(orjson.dumps(out).decode(), flush=True)
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
