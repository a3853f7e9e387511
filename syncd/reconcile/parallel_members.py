"""A PostgreSQL apply's member changes, and its user creates, on several connections at once.

`apply._members` writes its member batches one after another, and on PostgreSQL nearly all of
a batch's cost is the server's (row inserts, foreign-key checks, two index updates per
membership) while the client waits. `run` splits the teams over `WORKERS` threads; each runs
the same batch writer over its share, with its own connection and transactions.

A pull's user creates are the other way round: about half of a batch's cost is the client's
(building rows, COPY text, audit and feed rows) and half the server's (index entries, foreign
keys), one after the other on one connection. `run(..., weight=one)` over the user changes
lets one share's client work overlap the other's server work. Users of different shares are
different rows (distinct userNames and externalIds, as the plan has them), so their batches
only share-lock the same directory row.

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
from typing import Any, TypeVar

from syncd.reconcile.apply import ApplyProgress, ApplyResult
from syncd.reconcile.plan import MemberChange

#: member batches written at once (the machine's cores are what bounds the server's work)
WORKERS = 2

T = TypeVar("T")
Writer = Callable[[list[Any], ApplyResult, ApplyProgress], None]


def members(c: MemberChange) -> int:
    """A member change's weight: its memberships."""
    return len(c.user_external_ids)


def one(_c: object) -> int:
    """Every change weighs the same (user changes: one row each)."""
    return 1


class _Stop(Exception):
    """Raised in a worker's progress callback once another worker failed."""


def shares(changes: list[T], n: int, weight: Callable[[Any], int] = members) -> list[list[T]]:
    """`changes` in up to `n` non-empty shares of whole changes (teams), each in plan order,
    dealt so that the shares weigh about the same (by default: hold as many memberships)."""
    out: list[list[T]] = [[] for _ in range(max(1, n))]
    sizes = [0] * len(out)
    for c in changes:
        i = sizes.index(min(sizes))
        out[i].append(c)
        sizes[i] += weight(c)
    return [s for s in out if s]


def run(
    write: Writer,
    changes: list[Any],
    result: ApplyResult,
    tick: ApplyProgress,
    workers: int = WORKERS,
    *,
    weight: Callable[[Any], int] = members,
) -> None:
    """`write(share, result, tick)` for each share of `changes` (`shares` by `weight`), in
    parallel threads; progress is reported as the shares' sum over the total weight."""
    parts = shares(changes, workers, weight)
    if len(parts) <= 1:
        write(changes, result, tick)
        return
    lock = threading.Lock()
    failed = threading.Event()
    done = [0] * len(parts)
    total = sum(map(weight, changes))

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
