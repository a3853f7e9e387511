"""Benchmark: the CLI's start-up, as wall time and as a ratio to `python -c pass`.

    python bench/cli_start.py [--rounds 10]

Each command runs in a fresh interpreter, the way a user's shell runs `syncd`, against an
empty migrated SQLite store. The commands run round-robin, so a busy machine slows all of them
alike; the ratio of medians to the bare interpreter is the figure to compare across machines.
`import connectors.okta SDK` is the cost a command pays when it builds an Okta connector.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
ENTRY = "import sys; from cli.main import main; sys.argv[0] = 'syncd'; sys.exit(main())"


def commands(config: Path) -> dict[str, list[str]]:
    py = sys.executable
    syncd = [py, "-c", ENTRY]
    return {
        "python -c pass": [py, "-c", "pass"],
        "syncd --version": [*syncd, "--version"],
        "syncd users list": [*syncd, "--config", str(config), "users", "list"],
        "syncd --help": [*syncd, "--help"],
        "import connectors.okta SDK": [py, "-c", "from connectors.okta import OktaConnector"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.toml"
        config.write_text(f'state_dir = "{tmp}"\n')
        subprocess.run(
            [sys.executable, "-c", ENTRY, "--config", str(config), "db", "upgrade"],
            env=env,
            check=True,
            capture_output=True,
        )
        cmds = commands(config)
        times: dict[str, list[float]] = {name: [] for name in cmds}
        for argv in cmds.values():  # warm the page cache and .pyc files
            subprocess.run(argv, env=env, check=True, capture_output=True)
        for _ in range(args.rounds):
            for name, argv in cmds.items():
                t0 = time.perf_counter()
                subprocess.run(argv, env=env, check=True, capture_output=True)
                times[name].append(time.perf_counter() - t0)
    load = os.getloadavg()[0]
    base = statistics.median(times["python -c pass"])
    out: dict[str, object] = {"rounds": args.rounds, "load_avg_1m": round(load, 2)}
    for name, ts in times.items():
        med = statistics.median(ts)
        out[f"{name}: median_ms"] = round(med * 1000, 1)
        out[f"{name}: min_ms"] = round(min(ts) * 1000, 1)
        if name != "python -c pass":
            out[f"{name}: x python -c pass"] = round(med / base, 1)
    print(orjson.dumps(out).decode())


if __name__ == "__main__":
    main()
