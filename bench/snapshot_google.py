"""Benchmark: a full Google snapshot through `GoogleConnector` against the fake Directory API.

    python bench/snapshot_google.py [--users N --groups N --members N] [--concurrency N]

The fake runs in a subprocess (this script with ``--serve``), so its work does not share this
process's GIL with the SDK threads being measured. Then, in this process:

1. ``snapshot_s``: a full snapshot through the connector (the SDK path: google-auth token,
   AuthorizedHttp, googleapiclient requests and retry loop, one service per thread);
2. ``floor_s``: the same pages (same page sizes, same ``fields``) read by a minimal raw aiohttp
   client over the same number of connections, with one token fetched up front, parsed with
   orjson and nothing else.

The two are interleaved over ``--rounds`` rounds in the order snapshot, floor, floor,
snapshot, ... (each side runs as often first as second, so load that drifts during the run
weighs on both alike), and each figure is the best of its rounds: on a shared machine the best
round is the one least disturbed by other load. First rounds also pay one-time imports (the
floor's aiohttp, the SDK's lazily imported modules). ``*_s_all`` list every round; ``*_cpu_s``
is this process's CPU time (``time.process_time``, all threads), which other load disturbs less
than wall time. ``peak_rss_mb`` is ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` read right
after the first snapshot, before any floor ran (the whole process: interpreter, SDK, snapshot;
the tenant lives in the server process). Prints one JSON line on stdout.
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

from cryptography.hazmat.primitives import serialization

from connectors.testing.google import FakeGoogle, new_key, service_account_info
from connectors.testing.server import free_port
from connectors.testing.tenant import Tenant, generate


def serve(args: argparse.Namespace) -> None:
    """Child: generate the tenant, serve the fake on --port, print one ready line."""
    import uvicorn

    key = serialization.load_pem_private_key(sys.stdin.buffer.read(), password=None)
    tenant = generate(users=args.users, groups=args.groups, members_per_group=args.members)
    fake = FakeGoogle(tenant, signing_key=key)  # type: ignore[arg-type]
    fake.warm()
    print(orjson.dumps({"memberships": tenant.membership_count}).decode(), flush=True)
    uvicorn.run(
        fake.app(), host="127.0.0.1", port=args.port, log_level="warning", lifespan="off", access_log=False
    )


def start_server(args: argparse.Namespace, key: Any) -> tuple[subprocess.Popen[bytes], str, int]:
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
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin and proc.stdout
    proc.stdin.write(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    proc.stdin.close()
    memberships = orjson.loads(proc.stdout.readline())["memberships"]
    url = f"http://127.0.0.1:{port}"
    import httpx

    for _ in range(200):
        try:
            httpx.get(url + "/", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    return proc, url, memberships


async def floor(url: str, info: dict[str, str], concurrency: int, page: int) -> int:
    """Read every page the connector reads with raw aiohttp; returns requests sent.

    One token fetched up front, `concurrency` pooled connections, orjson parsing; only ids
    are kept (the connector keeps ids too).
    """
    import aiohttp
    import google_auth_httplib2
    import httplib2
    from google.oauth2 import service_account

    creds = service_account.Credentials.from_service_account_info(
        info,
        scopes=[
            "https://www.googleapis.com/auth/admin.directory.user.readonly",
            "https://www.googleapis.com/auth/admin.directory.group.readonly",
        ],
    ).with_subject("admin@contoso.example")
    creds.refresh(google_auth_httplib2.Request(httplib2.Http()))
    headers = {"Authorization": f"Bearer {creds.token}"}
    base = url + "/admin/directory/v1"
    sem = asyncio.Semaphore(concurrency)
    calls = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:

        async def pages(path: str, params: dict[str, Any], key: str) -> list[str]:
            nonlocal calls
            ids: list[str] = []
            token = None
            while True:
                async with (
                    sem,
                    session.get(
                        base + path, params={**params, **({"pageToken": token} if token else {})}
                    ) as r,
                ):
                    data = orjson.loads(await r.read())
                calls += 1
                ids.extend(item["id"] for item in data.get(key, ()))
                token = data.get("nextPageToken")
                if not token:
                    return ids

        users_t = asyncio.create_task(
            pages(
                "/users",
                {
                    "customer": "my_customer",
                    "maxResults": min(page, 500),
                    "projection": "basic",
                    "fields": "nextPageToken,users(id,primaryEmail,name(givenName,familyName,fullName),"
                    "suspended,archived)",
                },
                "users",
            )
        )
        groups = await pages(
            "/groups",
            {
                "customer": "my_customer",
                "maxResults": min(page, 200),
                "fields": "nextPageToken,groups(id,email,name,description)",
            },
            "groups",
        )
        await asyncio.gather(
            users_t,
            *(
                pages(
                    f"/groups/{gid}/members",
                    {"maxResults": min(page, 200), "fields": "nextPageToken,members(id,email,type)"},
                    "members",
                )
                for gid in groups
            ),
        )
    return calls


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--groups", type=int, default=10_000)
    ap.add_argument("--members", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="interleaved rounds of snapshot and floor; the best of each is reported",
    )
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args)
        return

    key = new_key()
    proc, url, memberships = start_server(args, key)
    times: dict[str, list[tuple[float, float]]] = {"snapshot": [], "floor": []}
    try:
        fake = FakeGoogle(Tenant(), signing_key=key)
        info = service_account_info(url + "/token", key)
        peak_mb = 0.0
        for i in range(args.rounds):
            for side in ("snapshot", "floor") if i % 2 == 0 else ("floor", "snapshot"):
                cpu0, t0 = time.process_time(), time.perf_counter()
                if side == "floor":
                    floor_calls = asyncio.run(floor(url, info, args.concurrency, 500))
                    times[side].append((time.perf_counter() - t0, time.process_time() - cpu0))
                    continue
                conn = fake.connector(url, concurrency=args.concurrency, time_budget=3600)

                async def snap(conn: Any = conn) -> Any:
                    try:
                        return await conn.snapshot()
                    finally:
                        await conn.aclose()

                snapshot = asyncio.run(snap())
                times[side].append((time.perf_counter() - t0, time.process_time() - cpu0))
                if not peak_mb:  # before any floor ran: the snapshot's own peak
                    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                assert snapshot.complete, snapshot.problems
                # drop it outside the timed part: freeing a million member ids takes a while
                n_users, n_groups = len(snapshot.users), len(snapshot.groups)
                api_calls = snapshot.stats.api_calls
                transitive = sum(len(g.member_ids) for g in snapshot.groups.values())
                del snapshot
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    snapshot_s, snapshot_cpu = (min(t[k] for t in times["snapshot"]) for k in (0, 1))
    floor_s, floor_cpu = (min(t[k] for t in times["floor"]) for k in (0, 1))
    print(
        orjson.dumps(
            {
                "kind": "google",
                "users": n_users,
                "groups": n_groups,
                "memberships": memberships,
                "snapshot_s": round(snapshot_s, 2),
                "floor_s": round(floor_s, 2),
                "ratio": round(snapshot_s / floor_s, 2),
                "snapshot_cpu_s": round(snapshot_cpu, 2),
                "floor_cpu_s": round(floor_cpu, 2),
                "cpu_ratio": round(snapshot_cpu / floor_cpu, 2),
                "peak_rss_mb": round(peak_mb, 1),
                "api_calls": api_calls,
                "floor_calls": floor_calls,
                "concurrency": args.concurrency,
                "transitive_memberships": transitive,
                "rounds": args.rounds,
                "snapshot_s_all": [round(t[0], 2) for t in times["snapshot"]],
                "floor_s_all": [round(t[0], 2) for t in times["floor"]],
                "snapshot_cpu_s_all": [round(t[1], 2) for t in times["snapshot"]],
                "floor_cpu_s_all": [round(t[1], 2) for t in times["floor"]],
                "rss_method": "getrusage ru_maxrss after the first snapshot, this process only",
            }
        ).decode()
    )


if __name__ == "__main__":
    main()
