"""Keeping the cyclic garbage collector off large, long-lived heaps: a server process's startup
objects (`freeze_startup_heap`) and a bulk stage's snapshot or plan (`heap_frozen`,
`collector_paused`).

A full (generation 2) collection walks every tracked object. A `syncd serve` worker holds about
140k of them after startup (FastAPI, pydantic, SQLAlchemy, psycopg, the app), nearly all for
the life of the process; each full collection took 70-90 ms on the event loop's thread, and
every request in flight waited it out (at 32 SCIM clients on PostgreSQL: p50 17 ms, p99 110 ms,
the slow requests all in the same few bursts). Frozen (`gc.freeze`), they are skipped; objects
made later are collected as before.

Invariants:
- `gc.unfreeze` hands back everything frozen, the startup heap included: a stage that froze
  the heap marks the startup freeze undone on exit, and `refreeze_startup_heap`, called at a
  quiet point (the daemon: after each run), collects and freezes again when no stage is inside;
- what is frozen is never collected as cyclic garbage until unfrozen: startup's own garbage is
  collected before the freeze, and objects that become cyclic garbage later (a connection the
  pool replaced, settings swapped by a reload) are kept until the next stage hands everything
  back.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_freezing = threading.Lock()
#: under `_freezing`: the startup heap was frozen; a stage handed it back since; threads inside
#: `heap_frozen`
_startup = False
_handed_back = False
_inside = 0


def freeze_startup_heap() -> None:
    """Collect startup's garbage, then leave every object alive now out of later collections.
    For a server process, once its app is built and before its requests."""
    global _startup, _handed_back
    with _freezing:
        gc.collect()
        gc.freeze()
        _startup, _handed_back = True, False


def refreeze_startup_heap() -> bool:
    """Freeze the heap again (after a collection) if a stage handed the startup freeze back and
    no stage is inside now; True if it did. At a quiet point: the collection walks the heap."""
    global _handed_back
    with _freezing:
        if not _handed_back or _inside:
            return False
        gc.collect()
        gc.freeze()
        _handed_back = False
        return True


_lock = threading.Lock()
#: threads inside `collector_paused`, and whether the collector was enabled when the first came in
_paused = 0
_resume = False


@contextmanager
def heap_frozen() -> Iterator[None]:
    """Objects alive on entry (the snapshot, imported modules) are out of the cyclic collector's
    reach until exit (`gc.freeze`), so the collections the stage's allocations trigger do not
    walk them again; on exit they are handed back (`gc.unfreeze`): nothing is kept alive that
    would otherwise be freed, and the startup freeze (`freeze_startup_heap`) is undone until
    `refreeze_startup_heap`. A freeze and unfreeze of another thread in between is harmless:
    the heap is whole again once both have exited."""
    global _inside, _handed_back
    with _freezing:
        _inside += 1
        gc.freeze()
    try:
        yield
    finally:
        with _freezing:
            _inside -= 1
            gc.unfreeze()
            _handed_back = _startup


@contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic cyclic collection runs while any thread is inside (for a stage that builds
    ~10^5-10^6 acyclic objects that live until it ends: the collections their allocations
    trigger find nothing to free). Reference counting still frees everything it can; cycles
    made meanwhile wait for the next collection. The collector is enabled again when the last
    thread leaves, if it was enabled when the first came in, however the stages overlap."""
    global _paused, _resume
    with _lock:
        if _paused == 0:
            _resume = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _lock:
            _paused -= 1
            if _paused == 0 and _resume:
                gc.enable()
