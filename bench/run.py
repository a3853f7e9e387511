"""Run the benchmarks and record their figures in docs/benchmarks.md.

    python bench/run.py                 # everything, full size
    python bench/run.py --only snapshot_graph,service_members
    python bench/run.py --small         # a quick pass at 1/10 size (figures marked as such)

Each benchmark is a script in bench/ that prints ONE JSON line; it runs in its own
subprocess so peak memory is its own. docs/benchmarks.md keeps one section per benchmark,
replaced when that benchmark runs again, so a partial run leaves the other figures in place.
Timings are reported side by side with their ratio in one run; nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
FULL = {"--users": "100000", "--groups": "10000", "--members": "100"}
SMALL = {"--users": "10000", "--groups": "1000", "--members": "100"}

BENCHES: dict[str, dict[str, object]] = {
    "snapshot_graph": {"title": "Full snapshot: Microsoft Graph connector vs fetch floor", "sized": True},
    "snapshot_okta": {"title": "Full snapshot: Okta connector vs fetch floor", "sized": True},
    "snapshot_google": {"title": "Full snapshot: Google Directory connector vs fetch floor", "sized": True},
    "snapshot_auth0": {"title": "Full snapshot: Auth0 connector vs fetch floor", "sized": True},
    "snapshot_keycloak": {"title": "Full snapshot: Keycloak connector vs fetch floor", "sized": True},
    "snapshot_onelogin": {"title": "Full snapshot: OneLogin connector vs fetch floor", "sized": True},
    "reconcile_graph": {
        "title": "Sync runs: Graph tenant into the store (initial, no-op, 1% changes) vs fetch floor",
        "sized": True,
    },
    "reconcile_graph_pg": {"title": "Sync runs as above, store on PostgreSQL", "sized": True},
    "service_members": {
        "title": "Service layer: one member add, team of 100 vs team of 100,000",
        "sized": False,
    },
    "scim_load": {
        "title": "SCIM endpoint: Entra-like mix at 1/8/32 clients; member add, team 100 vs 100,000",
        "sized": False,
    },
    "scim_vs_reference": {
        "title": "SCIM endpoint vs scim2-server (reference): filter+create pairs at 1/8/32 clients",
        "sized": False,
    },
    "cli_start": {
        "title": "CLI start: syncd --version and users list vs python -c pass",
        "sized": False,
    },
    "login_sync": {
        "title": "On-login sync: user in 5/50/500 groups, IdP answering instantly (syncd's own time)",
        "sized": False,
    },
    "deliver": {
        "title": "Delivery to a local SCIM target (LiteLLM-style gateway fake): full, no-op, change latency",
        "sized": True,
    },
}

HEADER = """# Benchmarks

Figures written by `make bench` (`python bench/run.py`); each section is replaced when its
benchmark runs again. Machine: 2 cores, 24 GiB. Timings compare side by side within one run;
ratios matter more than absolute seconds. Nothing here is asserted by tests.
"""


def run_one(name: str, small: bool) -> dict[str, object]:
    script = ROOT / "bench" / f"{name}.py"
    args: list[str] = []
    if BENCHES[name]["sized"]:
        for k, v in (SMALL if small else FULL).items():
            args += [k, v]
    proc = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, cwd=ROOT, timeout=1800
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{name} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def section(name: str, result: dict[str, object], small: bool) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    size = " (small run: 1/10 size)" if small else ""
    rows = "\n".join(f"| {k} | {v} |" for k, v in result.items())
    return (
        f"<!-- bench:{name} -->\n## {BENCHES[name]['title']}{size}\n\n"
        f"Run {when} on Python {platform.python_version()}, `bench/{name}.py`.\n\n"
        f"| figure | value |\n|---|---|\n{rows}\n<!-- /bench:{name} -->\n"
    )


def record(name: str, text: str) -> None:
    DOC.parent.mkdir(exist_ok=True)
    doc = DOC.read_text() if DOC.exists() else HEADER
    pat = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->\n", re.S)
    doc = pat.sub(lambda _: text, doc) if pat.search(doc) else doc.rstrip("\n") + "\n\n" + text
    DOC.write_text(doc)


def settle(limit: float = 0.7, longest: float = 120.0) -> float:
    """Write PostgreSQL's dirty pages out now (`CHECKPOINT`), then wait until the 1-minute load
    average is below `limit` (at most `longest` seconds), so a benchmark does not start while
    the last one's leftovers (the checkpoint and autovacuum after a large load, exiting servers)
    still hold a core; returns the seconds waited, the checkpoint's included. A spread
    checkpoint after the L pulls, left to itself, took its share of the cores during the SCIM
    benchmark that follows them."""
    t0 = time.monotonic()
    checkpoint()
    while os.getloadavg()[0] >= limit and time.monotonic() - t0 < longest:
        time.sleep(2.0)
    return round(time.monotonic() - t0, 1)


def checkpoint() -> None:
    """`CHECKPOINT` on the benchmarks' PostgreSQL server, if one answers (and the role may)."""
    url = os.environ.get("SYNCD_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        import psycopg

        with psycopg.connect(url.replace("+psycopg", ""), connect_timeout=3, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
    except Exception as exc:  # no server, or a role without pg_checkpoint: nothing to wait for
        print(f"no checkpoint: {type(exc).__name__}: {exc}".splitlines()[0], flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated benchmark names")
    ap.add_argument("--small", action="store_true", help="1/10 of the full tenant size")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n] or list(BENCHES)
    for n in names:
        if n not in BENCHES or not (ROOT / "bench" / f"{n}.py").exists():
            raise SystemExit(f"unknown benchmark {n!r}; known: {', '.join(BENCHES)}")
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    for n in names:
        print(f"settled for {settle()} s", flush=True)
        print(f"running {n} ...", flush=True)
        res = run_one(n, args.small)
        print(json.dumps(res), flush=True)
        record(n, section(n, res, args.small))
    print(f"wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
