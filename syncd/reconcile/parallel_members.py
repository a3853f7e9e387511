"""A PostgreSQL apply's member changes on several connections at once.

`apply._members` writes its member batches one after another, and on PostgreSQL nearly all of
a batch's cost is the server's (row inserts, foreign-key checks, two index updates per
membership) while the client waits. `run` splits the teams over `WORKERS` threads; each runs
the same batch writer over its share, with its own connection and transactions.

Invariants (the sequential writer's, kept): every batch is one transaction, and a team's
changes are all in one share, in plan order (so a team's versions and audit events come in the
same order); batches of different shares touch different teams and only share-lock the same
users, so they do not wait on each other (a deadlock would be retried as any lost race). The
caller's result gets each committed batch's counts as it commits, from any worker; if a worker
raises, the others finish their current batch and stop, and the first error is raised.
Progress reports the sum over the shares. The change feed needs nothing more: its readers
order by transaction (see `syncd.feed.reader`). SQLite serialises writers: use it only on
PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from syncd.reconcile.apply import ApplyProgress, ApplyResult
from syncd.reconcile.plan import MemberChange

#: member batches written at once (the machine's cores are what bounds the server's work)
WORKERS = 2

Writer = Callable[[list[MemberChange], ApplyResult, ApplyProgress], None]


class _Stop(Exception):
    """Raised in a worker's progress callback once another worker failed."""


def shares(changes: list[MemberChange], n: int) -> list[list[MemberChange]]:
    """`changes` in up to `n` non-empty shares of whole teams, each in plan order, members
    dealt so that the shares hold about as many memberships each."""
    out: list[list[MemberChange]] = [[] for _ in range(max(1, n))]
    sizes = [0] * len(out)
    for c in changes:
        i = sizes.index(min(sizes))
        out[i].append(c)
        sizes[i] += len(c.user_external_ids)
    return [s for s in out if s]


def run(
    write: Writer,
    changes: list[MemberChange],
    result: ApplyResult,
    tick: ApplyProgress,
    workers: int = WORKERS,
) -> None:
    """`write(share, result, tick)` for each share of `changes`, in parallel threads."""
    parts = shares(changes, workers)
    if len(parts) <= 1:
        write(changes, result, tick)
        return
    lock = threading.Lock()
    failed = threading.Event()
    done = [0] * len(parts)
    total = sum(len(c.user_external_ids) for c in changes)

    class Shared(ApplyResult):
        def add(self, kind: str, n: int = 1) -> None:
            with lock:
                result.add(kind, n)

    def worker(i: int) -> None:
        def progress(phase: str, n: int, _total: int) -> None:
            with lock:
                done[i] = n
                tick(phase, sum(done), total)
            if failed.is_set():
                raise _Stop

        try:
            write(parts[i], Shared(), progress)
        except _Stop:
            pass
        except BaseException:
            failed.set()
            raise

    with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="syncd-members") as pool:
        futures = [pool.submit(worker, i) for i in range(len(parts))]
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        raise errors[0]  # type: ignore[misc]
