"""`WriterQueue`: SQLite writers of different processes take turns on the sidecar file lock;
a turn held too long lets the waiter go on to SQLite's own lock instead of hanging."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from syncd.store.writer_queue import WriterQueue

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
