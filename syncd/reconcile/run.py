"""One sync run of one directory: lock → snapshot → scope → diff → plan → safety → apply → record.

Invariants: the directory lock is held for the whole run; the sync run row is written before
the first change and finished (outcome, counts, error) whatever happens; a dry run or a
safety stop writes no user, team or membership; the cursor is saved only after a complete
snapshot was applied. The store view a plan is made against is read after the fetch, its
fingerprint first (`syncd.reconcile.state`). During the IdP read, what was alive before it
(imported modules, the engine, a daemon's app) is out of the cyclic collector's reach
(`heap_frozen`: the read's full collections would walk it again and again, ~0.15 s of a 20k-user
read) and is handed back when the read ends, however it ends.

Outcomes: `applied` (a complete read, applied); `partial` (the read was incomplete — a page
failed, the time budget ran out, the IdP stopped answering — so its adds and updates were
applied and nothing was removed; `error` says why); `planned` (a dry run); `stopped` (a safety
threshold; nothing written); `failed`; `busy` (another run holds the lock). A run's notes (the
read's problems, and how it went, e.g. a fall back to a full read) are kept on the run row:
in its kept plan, or as `{"notes": [...]}` when no plan is kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine

from connectors.base import AuthError, Connector, ConnectorError, ProgressCallback, TransientError
from syncd.heap import collector_paused, heap_frozen
from syncd.reconcile.apply import ApplyProgress, ApplyResult, apply_plan
from syncd.reconcile.clean import admit
from syncd.reconcile.diff import TeamPolicy, UserPolicy, diff
from syncd.reconcile.load import load_view
from syncd.reconcile.plan import Plan, PlanBasis
from syncd.reconcile.safety import SafetyStop, Thresholds, check
from syncd.reconcile.scope import Scope, apply_scope
from syncd.reconcile.snapshot import Snapshot
from syncd.reconcile.state import fingerprint
from syncd.reconcile.view import StoreView
from syncd.service import tokens
from syncd.service.context import Actor
from syncd.service.errors import ServiceError
from syncd.store import session_scope
from syncd.store.locks import directory_lock
from syncd.store.models import ConnectorCursor, SyncRun, utcnow

Outcome = Literal["applied", "partial", "planned", "stopped", "failed", "busy"]
#: outcomes of runs that applied their plan (a partial one without its removals)
WROTE = ("applied", "partial")


@dataclass(frozen=True, slots=True)
class RunOptions:
    trigger: str = "cli"
    dry_run: bool = False
    allow_deletes: bool = False
    thresholds: Thresholds = field(default_factory=Thresholds)
    scope: Scope = field(default_factory=Scope)
    users_left: UserPolicy = "deactivate"
    teams_left: TeamPolicy = "archive"
    use_cursor: bool = True
    lock_dir: Path | None = None


@dataclass
class RunResult:
    run_id: int | None
    directory: str
    outcome: Outcome
    plan: Plan | None = None
    applied: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    mode: str = "full"
    complete: bool = True
    api_calls: int = 0
    throttles: int = 0
    seconds: float = 0.0
    #: the class of the exception that failed the run (a ConnectorError subclass for IdP trouble)
    failure: type[BaseException] | None = field(default=None, repr=False, compare=False)
    #: the run failed because the IdP could not be reached or refused the credentials
    unreachable: bool = False

    @property
    def notes(self) -> list[str]:
        return self.plan.notes if self.plan else []

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "directory": self.directory,
            "outcome": self.outcome,
            "mode": self.mode,
            "complete": self.complete,
            "planned": self.plan.counts() if self.plan else {},
            "applied": self.applied,
            "error": self.error,
            "api_calls": self.api_calls,
            "throttles": self.throttles,
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
            "unreachable": self.unreachable,
        }


def run_sync(
    engine: Engine,
    connector: Connector,
    options: RunOptions = RunOptions(),
    *,
    on_fetch: ProgressCallback | None = None,
    on_apply: ApplyProgress | None = None,
) -> RunResult:
    """Run one sync of `connector.directory`; see the module invariants. Never raises for IdP,
    safety or lock problems: they are the run's outcome."""
    import asyncio

    from syncd.store.locks import LockBusy

    directory = connector.directory
    t0 = time.monotonic()
    try:
        with directory_lock(engine, directory, lock_dir=options.lock_dir):
            return _locked(engine, connector, options, on_fetch, on_apply, asyncio.run, t0)
    except LockBusy as exc:
        return RunResult(None, directory, "busy", error=str(exc), seconds=time.monotonic() - t0)


def _locked(
    engine: Engine,
    connector: Connector,
    options: RunOptions,
    on_fetch: ProgressCallback | None,
    on_apply: ApplyProgress | None,
    arun: Callable[[Any], Any],
    t0: float,
) -> RunResult:
    directory = connector.directory
    with session_scope(engine) as s:
        tokens.ensure_directory(s, name=directory, kind=connector.kind)
        run = SyncRun(directory=directory, trigger=options.trigger, dry_run=options.dry_run)
        s.add(run)
        s.flush()
        run_id = run.id
        cur = s.get(ConnectorCursor, (directory, "default")) if options.use_cursor else None
        cursor = cur.value if cur else None
    result = RunResult(run_id, directory, "failed")
    try:

        async def fetch() -> Any:
            async with connector:
                return await connector.snapshot(cursor=cursor, progress=on_fetch)

        with heap_frozen():  # what was alive before the read (imports, engine, app) is not its garbage
            snapshot = arun(fetch())
        result.mode, result.complete = snapshot.mode, snapshot.complete
        result.api_calls, result.throttles = snapshot.stats.api_calls, snapshot.stats.throttles
        scoped = apply_scope(snapshot, options.scope)
        if _nothing_changed(scoped):  # an empty delta: no need to read the store (~3 s at 100k)
            view = StoreView()
            plan = Plan(directory, complete=snapshot.complete)
        else:
            with heap_frozen(), collector_paused():  # the view and plan are acyclic
                with session_scope(engine, write=False) as s:
                    state = fingerprint(s, directory)  # before the view: see syncd.reconcile.state
                    view = load_view(s, directory, expect=scoped.groups)
                scoped, held = admit(scoped, view)  # within the service's limits, or held with a note
                plan = diff(scoped, view, users_left=options.users_left, teams_left=options.teams_left)
            plan.basis = PlanBasis.of(plan, view, state)
            plan.notes.extend(held)
        plan.notes.extend(snapshot.notes)
        plan.notes.extend(snapshot.problems)
        result.plan = plan
        try:
            plan = result.plan = check(plan, view, options.thresholds, allow_deletes=options.allow_deletes)
        except SafetyStop as stop:
            result.outcome, result.error = (
                "stopped",
                (
                    f"{stop}. Nothing was written; review the kept plan with `syncd runs show {run_id}`, "
                    f"then apply it with `syncd runs approve {run_id}` (or rerun with --allow-deletes)"
                ),
            )
            return result
        if options.dry_run:
            result.outcome = "planned"
            return result
        actor = Actor("pull", directory, directory, sync_run_id=run_id)
        written = ApplyResult(result.applied)  # filled batch by batch: kept if apply raises
        apply_plan(engine, plan, actor, on_apply, result=written)
        if snapshot.complete and snapshot.cursor:
            _save_cursor(engine, directory, snapshot.cursor)
        result.outcome = "applied" if snapshot.complete else "partial"
        if not snapshot.complete:
            result.error = _incomplete(snapshot)
        return result
    except (ConnectorError, ServiceError) as exc:  # the run's outcome; the caller shows it
        result.outcome, result.failure = "failed", type(exc)
        result.error = f"{type(exc).__name__}: {exc}"
        result.unreachable = isinstance(exc, TransientError | AuthError)
        return result
    except BaseException as exc:  # a bug or an interrupt: recorded, then raised
        result.outcome, result.failure = "failed", type(exc)
        result.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        result.seconds = time.monotonic() - t0
        _finish(engine, run_id, result)


def _incomplete(snapshot: Snapshot) -> str:
    """The one line a partial run records as its error: why its read is incomplete."""
    first = snapshot.problems[0] if snapshot.problems else "a read failed"
    more = len(snapshot.problems) - 1
    return f"incomplete read, nothing removed: {first}" + (
        f" (and {more} more problems: see the run's notes)" if more > 0 else ""
    )


def _nothing_changed(snapshot: Snapshot) -> bool:
    return snapshot.mode == "delta" and not (
        snapshot.users or snapshot.groups or snapshot.removed_users or snapshot.removed_groups
    )


def _save_cursor(engine: Engine, directory: str, value: str) -> None:
    with session_scope(engine) as s:
        row = s.get(ConnectorCursor, (directory, "default"))
        if row is None:
            row = ConnectorCursor(directory=directory, name="default", value=value)
        row.value, row.updated_at = value, utcnow()
        s.add(row)


def _finish(engine: Engine, run_id: int | None, result: RunResult) -> None:
    with session_scope(engine) as s:
        run = s.get(SyncRun, run_id)
        if run is None:
            return
        run.ended_at = utcnow()
        run.outcome = result.outcome
        run.error = result.error
        run.mode = result.mode
        # a stopped or dry run: what it would write; any other: what its committed batches wrote
        kept = result.plan is not None and result.outcome in ("stopped", "planned")
        run.counts = result.plan.counts() if kept and result.plan else result.applied
        run.api_calls, run.throttles = result.api_calls, result.throttles
        if result.plan is not None and result.outcome in ("stopped", "planned"):
            run.plan = result.plan.to_dict()
        elif result.notes:
            run.plan = {"notes": result.notes}
        s.add(run)
