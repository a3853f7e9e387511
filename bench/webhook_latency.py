"""Benchmark: latency from a committed change to its webhook delivery, in daemon mode.

    python bench/webhook_latency.py [--store URL] [--changes N]

A `FeedWorkers` (the daemon's webhook workers) delivers to a local receiver that verifies
each Standard Webhooks signature; one user is created per transaction, `--gap` seconds
apart, and the latency is receipt time minus commit time. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", help="PostgreSQL URL (a fresh schema); default a SQLite file")
    ap.add_argument("--changes", type=int, default=200)
    ap.add_argument("--gap", type=float, default=0.02)
    args = ap.parse_args()

    from prometheus_client import CollectorRegistry
    from sqlalchemy import create_engine, text

    from syncd.config import parse_config
    from syncd.daemon.feed_workers import FeedWorkers
    from syncd.service import users
    from syncd.service.context import Actor
    from syncd.service.tokens import ensure_directory
    from syncd.store import session_scope
    from syncd.store.engine import make_engine, upgrade
    from tests.webhooks.receiver import receiver

    tmp = Path(tempfile.mkdtemp())
    schema = None
    if args.store:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with create_engine(args.store).begin() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{args.store}{'&' if '?' in args.store else '?'}options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{tmp / 'syncd.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with session_scope(engine) as s:
        ensure_directory(s, name="d", kind="scim")
    with receiver() as rcv:
        arrived: dict[str, float] = {}
        base = rcv.answer

        def answer(msg_id: str, payload: dict) -> tuple[int, dict[str, str]]:
            arrived[payload["data"]["resource"]["name"]] = time.perf_counter()
            return base(msg_id, payload)

        rcv.answer = answer
        cfg = parse_config(
            f'state_dir = "{tmp}"\n[store]\nurl = "{url}"\n'
            f'[webhooks.bench]\nurl = "{rcv.url}"\nsecret = "{rcv.secret}"\n'
        )
        workers = FeedWorkers(engine, lambda: cfg, CollectorRegistry())
        workers.start()
        time.sleep(1.0)  # the worker saved its cursor at the head
        committed: dict[str, float] = {}
        for i in range(args.changes):
            name = f"u{i}@x"
            with session_scope(engine) as s:
                users.create_user(s, actor=Actor("scim", "d"), body={"userName": name})
            committed[name] = time.perf_counter()
            time.sleep(args.gap)
        deadline = time.monotonic() + 60
        while len(arrived) < args.changes and time.monotonic() < deadline:
            time.sleep(0.05)
        workers.stop()
        lat = sorted((arrived[n] - committed[n]) * 1000 for n in committed if n in arrived)
    engine.dispose()
    if schema:
        with create_engine(args.store).begin() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    q = statistics.quantiles(lat, n=100)
    print(
        json.dumps(
            {
                "store": engine.dialect.name,
                "changes": args.changes,
                "delivered": len(lat),
                "rejected_signatures": len(rcv.rejected),
                "p50_ms": round(q[49], 1),
                "p95_ms": round(q[94], 1),
                "max_ms": round(lat[-1], 1),
            }
        )
    )


if __name__ == "__main__":
    main()
