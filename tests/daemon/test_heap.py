"""`freeze_startup_heap`: a server process's startup objects stay out of full collections, and
startup's own garbage is not kept. Each case runs in a child process: freezing is process-wide."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _child(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_serve_worker_builds_its_app_then_freezes_what_it_holds(tmp_path: Path) -> None:
    """What each `syncd serve` worker runs before its first request (uvicorn calls the factory)."""
    code = f"""
import gc
from syncd.scim.serve import AppFactory
from syncd.store.engine import make_engine, upgrade
url = "sqlite:///{tmp_path / "s.db"}"
upgrade(make_engine(url))
before = gc.get_freeze_count()
AppFactory(store_url=url, public_url="http://127.0.0.1:1", max_body_bytes=1 << 20)()
print(before, gc.get_freeze_count())
"""
    before, after = map(int, _child(code).split())
    assert before == 0 and after > 10_000  # the libraries and the app: tens of thousands


def test_startup_garbage_is_collected_not_frozen() -> None:
    code = """
import gc, weakref
from syncd.daemon.heap import freeze_startup_heap
class Node: pass
a, b = Node(), Node()
a.other, b.other = b, a  # a cycle: only the collector frees it
gone = weakref.ref(a)
kept = Node()
del a, b
gc.disable()  # no collection but the one under test
freeze_startup_heap()
print(gone() is None, gc.get_freeze_count() > 0, gc.is_tracked(kept))
"""
    assert _child(code) == "True True True"
