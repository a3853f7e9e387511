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
from syncd.heap import freeze_startup_heap
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


def test_a_stage_hands_the_startup_freeze_back_and_a_quiet_point_restores_it() -> None:
    """`heap_frozen`'s exit unfreezes everything: the daemon's SCIM server would be back to
    full collections over its startup heap after the first pull, but for the re-freeze."""
    code = """
import gc, threading
from syncd.heap import freeze_startup_heap, heap_frozen, refreeze_startup_heap
print(refreeze_startup_heap())  # nothing frozen at startup: nothing to restore
freeze_startup_heap()
with heap_frozen():
    pass
print(gc.get_freeze_count() == 0)  # handed back
inside, leave = threading.Event(), threading.Event()
def stage():
    with heap_frozen():
        inside.set()
        leave.wait()
t = threading.Thread(target=stage)
t.start()
inside.wait()
print(refreeze_startup_heap())  # not while a stage is inside
leave.set()
t.join()
print(refreeze_startup_heap(), gc.get_freeze_count() > 0, refreeze_startup_heap())
"""
    assert _child(code).split() == ["False", "True", "False", "True", "True", "False"]
