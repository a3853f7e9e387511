"""Directory locks: two pulls of one directory never run at once (DESIGN.md rule 4).

SQLite: an exclusive `flock` on a file beside the database (one machine, any process).
PostgreSQL: a session-level advisory lock keyed by the directory name, held on a dedicated
connection (any replica, any machine). Both are released when the holder exits or dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text


class LockBusy(Exception):
    """Another process holds the directory's lock."""


def _key(directory: str) -> int:
    return int.from_bytes(hashlib.sha256(f"syncd:{directory}".encode()).digest()[:8], "big", signed=True)


@contextmanager
def directory_lock(engine: Engine, directory: str, *, lock_dir: Path | None = None) -> Iterator[None]:
    """Hold the lock of `directory` for the block; LockBusy at once if someone else holds it."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _key(directory)}).scalar()
            conn.commit()
            if not got:
                raise LockBusy(f"a sync of {directory!r} is already running (PostgreSQL advisory lock)")
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _key(directory)})
                conn.commit()
        return
    base = lock_dir or Path(engine.url.database or ".").expanduser().resolve().parent
    base.mkdir(parents=True, exist_ok=True)
    path = base / f".syncd-{directory}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockBusy(f"a sync of {directory!r} is already running (lock file {path})") from None
        yield
    finally:
        os.close(fd)
