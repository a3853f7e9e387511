"""Keeping the cyclic garbage collector off a large, long-lived heap during a bulk stage."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


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
