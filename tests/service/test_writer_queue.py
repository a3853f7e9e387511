"""`WriterQueue`: SQLite writers of different processes take turns on the sidecar file lock;
a turn held too long lets the waiter go on to SQLite's own lock instead of hanging."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from syncd.store.writer_queue import STARVING_S, YIELD_MAX_S, WriterQueue

#: A second process that holds the queue's turn of `argv[1]` until a line arrives on stdin,
#: and writes "released" to `argv[2]` just before it lets go.
HOLDER = """
import sys
from pathlib import Path
from syncd.store.writer_queue import WriterQueue
with WriterQueue(sys.argv[1], timeout_s=30).turn():
    print("held", flush=True)
    sys.stdin.readline()
    Path(sys.argv[2]).write_text("released")
"""
ROOT = Path(__file__).resolve().parents[2]


def _holder(db: Path, marker: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db), str(marker)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_writer_starts_only_after_another_process_ended_its_turn(tmp_path: Path) -> None:
    db, marker = tmp_path / "s.db", tmp_path / "marker"
    holder = _holder(db, marker)
    seen: list[str] = []

    def write() -> None:
        with WriterQueue(str(db), timeout_s=60).turn():
            seen.append(marker.read_text() if marker.exists() else "entered while held")

    t = threading.Thread(target=write)
    t.start()
    time.sleep(0.3)  # let the writer reach the queue; were the lock broken, it would enter now
    assert holder.stdin is not None
    holder.stdin.write("go\n")
    holder.stdin.flush()
    t.join(30)
    assert holder.wait(30) == 0
    assert seen == ["released"]


def test_a_writer_goes_on_to_sqlite_after_the_queue_timeout(tmp_path: Path) -> None:
    db, marker = tmp_path / "s.db", tmp_path / "marker"
    holder = _holder(db, marker)
    try:
        entered = False
        with WriterQueue(str(db), timeout_s=0.05).turn():
            entered = True
        assert entered and not marker.exists()
    finally:
        assert holder.stdin is not None
        holder.stdin.write("go\n")
        holder.stdin.flush()
        holder.wait(30)


def test_a_nested_turn_in_one_thread_passes_and_the_outer_end_releases_the_file(tmp_path: Path) -> None:
    db, marker = tmp_path / "s.db", tmp_path / "marker"
    queue = WriterQueue(str(db), timeout_s=60)
    with queue.turn(), queue.turn():
        pass
    holder = _holder(db, marker)  # takes the file lock: the outer turn's end released it
    assert holder.stdin is not None
    holder.stdin.write("go\n")
    holder.stdin.flush()
    assert holder.wait(30) == 0 and marker.read_text() == "released"


#: Another process taking turns back to back, each held 2 ms and logged as "A" in `argv[2]`,
#: until a line arrives on stdin.
STREAK = """
import os, select, sys, time
from syncd.store.writer_queue import WriterQueue
queue = WriterQueue(sys.argv[1], timeout_s=30)
log = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
print("going", flush=True)
while not select.select([sys.stdin], [], [], 0)[0]:
    with queue.turn():
        os.write(log, b"A")
        time.sleep(0.002)
"""

#: Another process with a writer queued since `argv[2]` (`time.monotonic_ns`, the same clock in
#: every process) that failed to take the turn once; it leaves the queue when a line arrives on
#: stdin, and exits at the next.
QUEUED = """
import sys
from syncd.store.writer_queue import WriterQueue
queue = WriterQueue(sys.argv[1], timeout_s=30)
with queue.waiting(int(sys.argv[2])) as failed:
    failed()
    print("waiting", flush=True)
    sys.stdin.readline()
print("left", flush=True)
sys.stdin.readline()
"""


def _spawn(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_a_process_taking_turns_back_to_back_lets_the_other_process_in(tmp_path: Path) -> None:
    """The other process frees the lock for microseconds between its turns: a waiter retrying
    every millisecond would almost never find it free. It is let in after a few of its turns."""
    db, log = tmp_path / "s.db", tmp_path / "log"
    streak = _spawn(STREAK, str(db), str(log))
    try:
        assert streak.stdout is not None and streak.stdout.readline().strip() == "going"
        queue, fd = WriterQueue(str(db), timeout_s=30), os.open(log, os.O_WRONLY | os.O_APPEND)
        for _ in range(10):
            with queue.turn():
                os.write(fd, b"B")
            time.sleep(0.003)
        os.close(fd)
    finally:
        assert streak.stdin is not None
        streak.stdin.write("stop\n")
        streak.stdin.flush()
        assert streak.wait(30) == 0
    turns = log.read_text()
    assert turns.count("B") == 10
    between = [len(run) for run in turns.strip("A").split("B")[1:-1]]
    assert max(between) <= 25, turns  # back to back without alternation: hundreds


@pytest.mark.parametrize("ends", ["leaves the queue", "is killed"])
def test_a_writer_lets_an_older_writer_of_another_process_go_first_while_it_waits(
    tmp_path: Path, ends: str
) -> None:
    db, queue = tmp_path / "s.db", WriterQueue(str(tmp_path / "s.db"), timeout_s=30)
    arrived = time.monotonic_ns()
    other = _spawn(QUEUED, str(db), str(arrived))
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "waiting"
        with queue.turn_if_free(since=arrived + int(STARVING_S * 2e9)) as free:
            assert not free  # the other arrived first: it goes first
        if ends == "is killed":
            other.kill()
            other.wait(30)
        else:
            assert other.stdin is not None
            other.stdin.write("leave\n")
            other.stdin.flush()
            assert other.stdout.readline().strip() == "left"
        with queue.turn_if_free(since=arrived + int(STARVING_S * 2e9)) as free:
            assert free  # nobody waits any more
    finally:
        other.kill()
        other.wait(30)


def test_a_writer_does_not_let_a_younger_or_barely_older_writer_go_first(tmp_path: Path) -> None:
    db, queue = tmp_path / "s.db", WriterQueue(str(tmp_path / "s.db"), timeout_s=30)
    arrived = time.monotonic_ns()
    other = _spawn(QUEUED, str(db), str(arrived))
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "waiting"
        for mine in (arrived - int(STARVING_S * 1e9), arrived + int(STARVING_S * 0.5e9)):
            with queue.turn_if_free(since=mine) as free:
                assert free
    finally:
        other.kill()
        other.wait(30)


def test_a_writer_compares_the_oldest_writer_of_its_process_not_its_own_arrival(tmp_path: Path) -> None:
    """A younger writer of this process trying for an older one queued behind it (the loop's
    write while a thread holds the turn's lock) does not give way to a writer of another
    process that this process's oldest is older than: else each process waits for the other."""
    db, queue = tmp_path / "s.db", WriterQueue(str(tmp_path / "s.db"), timeout_s=30)
    oldest = time.monotonic_ns()
    other = _spawn(QUEUED, str(db), str(oldest + int(STARVING_S * 2e9)))
    try:
        with queue.waiting(since=oldest) as failed:
            failed()  # this process's oldest writer, queued
            assert other.stdout is not None and other.stdout.readline().strip() == "waiting"
            with queue.turn_if_free(since=oldest + int(STARVING_S * 4e9)) as free:
                assert free
    finally:
        other.kill()
        other.wait(30)


def test_an_older_writer_that_does_not_take_the_free_turn_is_not_waited_for_again_at_once(
    tmp_path: Path,
) -> None:
    """A mark whose writer is not trying (its process busy elsewhere) costs `YIELD_MAX_S`, then
    this process takes its turns without giving way, for `IGNORE_S`."""
    db, queue = tmp_path / "s.db", WriterQueue(str(tmp_path / "s.db"), timeout_s=30)
    arrived = time.monotonic_ns()
    other = _spawn(QUEUED, str(db), str(arrived))  # marked, and never tries
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "waiting"
        mine = arrived + int(STARVING_S * 2e9)
        with queue.turn_if_free(since=mine) as free:
            assert not free  # gives way
        time.sleep(YIELD_MAX_S * 1.5)
        for _ in range(3):  # went on, and does not give way again each turn
            with queue.turn_if_free(since=mine) as free:
                assert free
    finally:
        other.kill()
        other.wait(30)
