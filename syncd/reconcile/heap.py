"""Keeping the cyclic garbage collector off a large, long-lived heap during a bulk stage."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
#: threads inside `collector_paused`, and whether the collector was enabled when the first came in
_paused = 0
_resume = False


@contextmanager
def heap_frozen() -> Iterator[None]:
    """Objects alive on entry (the snapshot, imported modules) are out of the cyclic collector's
    reach until exit (`gc.freeze`), so the collections the stage's allocations trigger do not
    walk them again; on exit they are handed back (`gc.unfreeze`): nothing is kept alive that
    would otherwise be freed. A freeze and unfreeze of another thread in between is harmless:
    the heap is whole again once both have exited."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


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
