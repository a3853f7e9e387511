"""Benchmark: p50 of adding one member to a team of 100 vs a team of 100,000 (SQLite and PostgreSQL).

    python bench/service_members.py [--big 100000] [--samples 200]

Prints one JSON line. The two must be close (the service reads only the rows a request names).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, delete, text

from syncd.service import teams
from syncd.store import session_scope
from syncd.store.engine import make_engine, upgrade
from syncd.store.models import Membership
from tests.service.helpers import ENTRA, setup_dirs
from tests.service.test_membership_scale import bulk_team

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def p50_add(engine, team_id: str, prefix: str, start: int, samples: int) -> float:
    times = []
    for i in range(samples):
        uid = f"{prefix}-{start + i}"
        t0 = time.perf_counter()
        with session_scope(engine) as s:
            teams.patch_team(
                s,
                actor=ENTRA,
                team_id=team_id,
                operations=[{"op": "add", "path": "members", "value": [{"value": uid}]}],
            )
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def measure(engine, big: int, samples: int) -> dict[str, float]:
    upgrade(engine)
    setup_dirs(engine)
    bulk_team(engine, "small", 100 + samples, "s")
    bulk_team(engine, "big", big + samples, "b")
    # remove the last `samples` memberships so the adds are real inserts
    with engine.begin() as c:
        for team, ids in (
            ("small", [f"s-{100 + i}" for i in range(samples)]),
            ("big", [f"b-{big + i}" for i in range(samples)]),
        ):
            c.execute(delete(Membership).where(Membership.team_id == team, Membership.user_id.in_(ids)))
    small = p50_add(engine, "small", "s", 100, samples)
    large = p50_add(engine, "big", "b", big, samples)
    return {
        "p50_ms_team_100": round(small, 3),
        f"p50_ms_team_{big}": round(large, 3),
        "ratio": round(large / small, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--big", type=int, default=100_000)
    ap.add_argument("--samples", type=int, default=200)
    a = ap.parse_args()
    out: dict[str, object] = {"samples": a.samples}
    with tempfile.TemporaryDirectory() as d:
        eng = make_engine(f"sqlite:///{d}/bench.db")
        out.update({f"sqlite_{k}": v for k, v in measure(eng, a.big, a.samples).items()})
        eng.dispose()
    try:
        admin = create_engine(PG)
        with admin.begin() as c:
            c.execute(text("DROP SCHEMA IF EXISTS bench_members CASCADE; CREATE SCHEMA bench_members"))
        eng = make_engine(PG + "?options=-csearch_path%3Dbench_members")
        out.update({f"postgres_{k}": v for k, v in measure(eng, a.big, a.samples).items()})
        eng.dispose()
        with admin.begin() as c:
            c.execute(text("DROP SCHEMA bench_members CASCADE"))
    except Exception as exc:  # PostgreSQL not reachable: report SQLite only
        out["postgres"] = f"skipped: {type(exc).__name__}"
    print(orjson.dumps(out).decode())


if __name__ == "__main__":
    main()
