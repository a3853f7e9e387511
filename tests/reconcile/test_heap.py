"""heap.heap_frozen: the heap is handed back to the collector however the stage ends."""

from __future__ import annotations

import contextlib
import gc

import pytest

from syncd.reconcile.heap import heap_frozen


@pytest.mark.parametrize("fails", [False, True])
def test_the_heap_is_whole_again_after_the_stage(fails: bool) -> None:
    gc.unfreeze()
    with pytest.raises(RuntimeError) if fails else contextlib.nullcontext(), heap_frozen():
        assert gc.get_freeze_count() > 0
        if fails:
            raise RuntimeError("stage failed")
    assert gc.get_freeze_count() == 0
