"""heap.heap_frozen: the heap is handed back to the collector however the stage ends."""

from __future__ import annotations

import contextlib
import gc
import threading

import pytest

from syncd.heap import collector_paused, heap_frozen


@pytest.mark.parametrize("fails", [False, True])
def test_the_heap_is_whole_again_after_the_stage(fails: bool) -> None:
    gc.unfreeze()
    with pytest.raises(RuntimeError) if fails else contextlib.nullcontext(), heap_frozen():
        assert gc.get_freeze_count() > 0
        if fails:
            raise RuntimeError("stage failed")
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize("fails", [False, True])
def test_the_collector_runs_again_after_the_stage(fails: bool) -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError) if fails else contextlib.nullcontext(), collector_paused():
        assert not gc.isenabled()
        if fails:
            raise RuntimeError("stage failed")
    assert gc.isenabled()


def test_overlapping_pauses_of_two_threads_leave_the_collector_on() -> None:
    entered, leave = threading.Event(), threading.Event()

    def other() -> None:
        with collector_paused():
            entered.set()
            leave.wait(5)

    first = collector_paused()
    first.__enter__()
    t = threading.Thread(target=other)
    t.start()
    assert entered.wait(5)
    first.__exit__(None, None, None)  # the first out while the other is still in
    assert not gc.isenabled()
    leave.set()
    t.join(5)
    assert gc.isenabled()


def test_a_collector_off_on_entry_stays_off() -> None:
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
