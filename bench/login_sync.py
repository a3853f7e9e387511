"""Benchmark: on-login sync latency for a user in 5, 50 and 500 groups (SQLite and PostgreSQL).

    python bench/login_sync.py [--samples 200]

The IdP answers instantly (an in-process connector returning the user's groups), so the figures
are syncd's own overhead: the store transaction that checks the user, finds or creates the
teams and changes the memberships, and the answer. Three cases per size:
  first   the first login: every team and membership is created (one sample per size)
  steady  nothing changed since the last login (p50/p95 over --samples logins)
  change  one group left and one joined since the last login (p50/p95 over --samples logins)
At 500 groups the per-row write (one service call per team and per membership, the path the
login took before it planned with the reconcile diff: `tests/daemon/login_per_row.py`) is timed
in the same run on its own directory (`rows_*`, first and steady), and `speedup_*` is its time
over the login's: the machine is shared, so the ratio is the figure to compare across runs.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text

from connectors.base import Connector
from syncd.config import parse_config
from syncd.daemon.login import LoginService
from syncd.reconcile.snapshot import Snapshot, SnapshotGroup, SnapshotUser, UserGroups
from syncd.store.engine import make_engine, upgrade
from tests.daemon.login_per_row import sync_per_row

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SIZES = (5, 50, 500)


class Instant(Connector):
    kind = "graph"

    def __init__(self, directory: str) -> None:
        super().__init__(directory)
        self.answer: UserGroups | None = None

    async def snapshot(self, *, cursor: str | None = None, progress: Any = None) -> Snapshot:
        raise NotImplementedError

    async def user_groups(self, user: str) -> UserGroups:
        assert self.answer is not None
        return self.answer


def groups(n: int, offset: int = 0) -> tuple[SnapshotGroup, ...]:
    return tuple(SnapshotGroup(f"g{i}", f"group-{i:04d}") for i in range(offset, offset + n))


def pct(xs: list[float], p: float) -> float:
    return round(statistics.quantiles(xs, n=100, method="inclusive")[int(p) - 1] * 1000, 2)


def measure(engine: Any, samples: int) -> dict[str, float]:
    upgrade(engine)
    settings = parse_config(
        'state_dir = "/tmp"\n[directories.entra]\nkind = "graph"\ntenant_id = "t"\nclient_id = "c"\n'
        'client_secret = "s"\n'
    )
    conn = Instant("entra")
    svc = LoginService(engine, lambda: settings, connector_factory=lambda *_a, **_k: conn)
    out: dict[str, float] = {}
    try:
        for n in SIZES:
            user = SnapshotUser(f"user-{n}", f"user{n}@example.com", email=f"user{n}@example.com")
            base = groups(n, offset=n * 10)
            conn.answer = UserGroups("entra", user, base)
            t0 = time.perf_counter()
            r = svc.sync("entra", user.user_name)
            out[f"first_ms_{n}"] = round((time.perf_counter() - t0) * 1000, 2)
            assert len(r.teams) == n and len(r.created_teams) == n
            steady = []
            for _ in range(samples):
                t0 = time.perf_counter()
                svc.sync("entra", user.user_name)
                steady.append(time.perf_counter() - t0)
            extra = groups(1, offset=n * 10 + n)[0]
            swapped = (*base[1:], extra)
            change = []
            for i in range(samples):
                conn.answer = UserGroups("entra", user, swapped if i % 2 == 0 else base)
                t0 = time.perf_counter()
                r = svc.sync("entra", user.user_name)
                change.append(time.perf_counter() - t0)
                assert len(r.added) == 1 and len(r.removed) == 1
            out[f"steady_p50_ms_{n}"], out[f"steady_p95_ms_{n}"] = pct(steady, 50), pct(steady, 95)
            out[f"change_p50_ms_{n}"], out[f"change_p95_ms_{n}"] = pct(change, 50), pct(change, 95)
    finally:
        svc.close()
    out.update(per_row(engine, max(20, samples // 4), out))
    return out


def per_row(engine: Any, samples: int, login: dict[str, float]) -> dict[str, float]:
    """The per-row write for a user in 500 groups, first and steady, in directory "rows"."""
    user = SnapshotUser("user-rows", "rows@example.com", email="rows@example.com")
    answer = UserGroups("rows", user, groups(500, offset=100_000))
    t0 = time.perf_counter()
    assert len(sync_per_row(engine, "rows", answer)["created"]) == 500
    first = time.perf_counter() - t0
    steady = []
    for _ in range(samples):
        t0 = time.perf_counter()
        sync_per_row(engine, "rows", answer)
        steady.append(time.perf_counter() - t0)
    out = {"rows_first_ms_500": round(first * 1000, 2)}
    out["rows_steady_p50_ms_500"], out["rows_steady_p95_ms_500"] = pct(steady, 50), pct(steady, 95)
    out["speedup_first_500"] = round(out["rows_first_ms_500"] / login["first_ms_500"], 1)
    out["speedup_steady_p50_500"] = round(out["rows_steady_p50_ms_500"] / login["steady_p50_ms_500"], 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=200)
    a = ap.parse_args()
    out: dict[str, object] = {"samples": a.samples, "load_avg_1m_at_start": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory() as d:
        eng = make_engine(f"sqlite:///{d}/bench.db")
        out.update({f"sqlite_{k}": v for k, v in measure(eng, a.samples).items()})
        eng.dispose()
    try:
        admin = create_engine(PG)
        with admin.begin() as c:
            c.execute(text("DROP SCHEMA IF EXISTS bench_login CASCADE; CREATE SCHEMA bench_login"))
        eng = make_engine(PG + "?options=-csearch_path%3Dbench_login")
        out.update({f"postgres_{k}": v for k, v in measure(eng, a.samples).items()})
        eng.dispose()
        with admin.begin() as c:
            c.execute(text("DROP SCHEMA bench_login CASCADE"))
    except Exception as exc:  # PostgreSQL not reachable: report SQLite only
        out["postgres"] = f"skipped: {type(exc).__name__}: {exc}"[:200]
    out["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(orjson.dumps(out).decode())


if __name__ == "__main__":
    main()
