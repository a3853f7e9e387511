"""Approve a kept plan: apply what a safety stop held back, if the directory has not moved since.

A run stopped by a safety threshold keeps its plan (`SyncRun.plan`) with the directory's
fingerprint at the moment the plan was computed (`syncd.reconcile.state`): the newest audit
event of that directory's users and teams (every write of the service layer records one, in
the same transaction), how many of its events lie up to it, and the connector's saved cursor.
`approve_run` takes the directory's lock, reads the fingerprint again and applies the kept
plan only when it is unchanged; any write to the
directory since (a pull, a SCIM push, an on-login sync, an earlier approval) or another read of
the IdP refuses it, with the reason and `syncd plan` as the fix. The approval is a sync run of its
own (trigger "approve"), audited as actor `pull:<actor>` (`pull:cli` from the CLI).

Invariant: the kept run records the run that approved it (`approved_by_run`) only when that run
applied the whole plan. A refused approval writes nothing; an approval whose apply failed is a
failed run of its own and leaves the kept plan unapproved (whatever it wrote before failing
moved the fingerprint, so approving the same plan again is refused: plan afresh).

The fingerprint is taken before the store view is read, so a write that lands in between makes
it older than the plan's basis and the approval is refused (never wrongly allowed).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from syncd.reconcile.apply import ApplyProgress, apply_plan
from syncd.reconcile.plan import Plan, PlanFormatError
from syncd.reconcile.run import RunResult
from syncd.reconcile.state import STATE_KINDS, below, fingerprint
from syncd.service.context import Actor
from syncd.service.errors import ServiceError
from syncd.store import session_scope
from syncd.store.locks import LockBusy, directory_lock
from syncd.store.models import AuditEvent, SyncRun, utcnow

#: the audit label of an approval's writes
APPROVER = "cli"


class ApprovalRefused(Exception):
    """The kept plan cannot be applied; `problem` says why and `fix` what to do instead."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}; {fix}")
        self.problem, self.fix = problem, fix


class DirectoryBusy(ApprovalRefused):
    """Another run holds the directory's lock: nothing was checked or written; try again later."""


def _differences(kept: dict[str, Any], now: dict[str, Any], session: Session, directory: str) -> list[str]:
    why = []
    if now["audit_id"] != kept.get("audit_id"):
        since = session.execute(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.directory == directory,
                AuditEvent.resource_type.in_(STATE_KINDS),
                AuditEvent.id > (kept.get("audit_id") or 0),
            )
        ).scalar_one()
        why.append(f"{since} change(s) were written to its users and teams since")
    elif below(session, directory, kept.get("audit_id")) != kept.get("below"):
        why.append("an audit event with an earlier id was committed after the plan was made")
    if now["cursor"] != kept.get("cursor"):
        why.append("another run has read the IdP since (its read cursor moved)")
    return why


def kept_plan(session: Session, run_id: int) -> tuple[SyncRun, Plan]:
    """The run and its kept plan, if it is one that can be approved; else ApprovalRefused."""
    run = session.get(SyncRun, run_id)
    if run is None:
        raise ApprovalRefused(f"no sync run {run_id}", "`syncd runs` lists them")
    if run.outcome != "stopped":
        raise ApprovalRefused(
            f"run {run_id} was not stopped by a safety threshold (outcome {run.outcome})",
            "only a stopped run's kept plan can be approved",
        )
    data = run.plan or {}
    if data.get("approved_by_run"):
        raise ApprovalRefused(
            f"run {run_id} was already approved by run {data['approved_by_run']}",
            f"`syncd runs show {data['approved_by_run']}` shows what it applied",
        )
    try:
        plan = Plan.from_dict(data)
    except PlanFormatError as exc:
        raise ApprovalRefused(
            f"run {run_id}'s kept plan cannot be read ({exc})", f"run `syncd plan -d {run.directory}`"
        ) from None
    if plan.directory != run.directory:  # the lock and fingerprint guard the run's directory
        raise ApprovalRefused(
            f"run {run_id} is of directory {run.directory} but its kept plan is of {plan.directory}",
            f"run `syncd plan -d {run.directory}` for a fresh plan",
        )
    if not data.get("fingerprint") or "below" not in data["fingerprint"]:
        raise ApprovalRefused(
            f"run {run_id}'s kept plan has no record of the directory's state (or an older form of it)",
            f"run `syncd plan -d {run.directory}` for a fresh plan",
        )
    return run, plan


def approve_run(
    engine: Engine,
    run_id: int,
    *,
    lock_dir: Path | None = None,
    on_apply: ApplyProgress | None = None,
    actor: str | None = None,
) -> RunResult:
    """Apply run `run_id`'s kept plan as a new sync run; ApprovalRefused when it may not be.
    `actor` names who approved in the audit (`pull:<actor>`; default "cli").

    The returned result's outcome is "applied", or "failed" when the service refused a write
    (then `applied` counts what was written before it, and the kept plan stays unapproved).
    Any other error is raised after the new run is recorded as failed."""
    t0 = time.monotonic()
    with session_scope(engine, write=False) as s:
        kept, plan = kept_plan(s, run_id)
        directory, kept_fp, kept_data, mode = kept.directory, kept.plan["fingerprint"], kept.plan, kept.mode
    try:
        with directory_lock(engine, directory, lock_dir=lock_dir):
            with session_scope(engine) as s:
                kept_plan(s, run_id)  # approved by someone else while we waited?
                now = fingerprint(s, directory)
                why = _differences(kept_fp, now, s, directory)
                if why:
                    raise ApprovalRefused(
                        f"directory {directory} changed since run {run_id} was planned: {'; '.join(why)}",
                        f"run `syncd plan -d {directory}` to see the plan against its current state",
                    )
                run = SyncRun(directory=directory, trigger="approve", mode=mode)
                s.add(run)
                s.flush()
                new_id = run.id
            return _apply(engine, plan, new_id, run_id, kept_data, mode, on_apply, t0, actor or APPROVER)
    except LockBusy as exc:
        raise DirectoryBusy(f"{exc}", "try again when that run has finished") from None


def _apply(
    engine: Engine,
    plan: Plan,
    new_id: int | None,
    run_id: int,
    kept_data: dict[str, Any],
    mode: str,
    on_apply: ApplyProgress | None,
    t0: float,
    approver: str,
) -> RunResult:
    directory = plan.directory
    result = RunResult(new_id, directory, "failed", plan=plan, mode=mode)
    result.complete = plan.complete
    actor = Actor("pull", directory, approver, sync_run_id=new_id)
    try:
        result.applied = apply_plan(engine, plan, actor, on_apply).applied
        result.outcome = "applied"
    except ServiceError as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    except BaseException as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        result.seconds = time.monotonic() - t0
        with session_scope(engine) as s:
            run = s.get(SyncRun, new_id)
            if run is not None:
                run.ended_at = utcnow()
                run.outcome, run.error = result.outcome, result.error
                run.counts = dict(result.applied)
                run.plan = {**kept_data, "approves_run": run_id, "approved_by_run": None}
                s.add(run)
            kept = s.get(SyncRun, run_id)
            if result.outcome == "applied" and kept is not None and kept.plan is not None:
                kept.plan = {**kept.plan, "approved_by_run": new_id}
                s.add(kept)
    return result
