"""Benchmark: `bench/reconcile_graph.py` with the store on PostgreSQL (a fresh schema).

    python bench/reconcile_graph_pg.py [--users N --groups N --members N]

The server is `SYNCD_BENCH_PG_URL` (default: postgres@127.0.0.1:5432, database test).
Prints one JSON line, as `reconcile_graph.py` does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reconcile_graph import main

if __name__ == "__main__":
    url = os.environ.get("SYNCD_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    sys.argv[1:1] = ["--store", url]
    main()
