"""Overview (`/`): one row per directory and per delivery target, and **Sync now**.

    GET  /                          directories (kind, schedule, last run, next slot, last error)
                                    and targets (full-reconcile schedule, lag, last delivery)
    POST /directories/{name}/sync   form: csrf, dry_run? → 303 to the run's page; 409 (the page
                                    with a message) when a sync of it runs already

Every figure is read from the store and the daemon's scheduler; nothing here writes but the
trigger, which is audited (`directory.sync` by the admin).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select

from cli.planview import summary
from syncd.console import actions
from syncd.console.deps import Admin, daemon, require_admin
from syncd.console.render import page
from syncd.daemon.admin import newest_run_ids
from syncd.daemon.runner import START_WAIT_S, AlreadyRunning
from syncd.store import session_scope
from syncd.store.models import AuditEvent, ScimToken, SyncRun

router = APIRouter(dependencies=[Depends(require_admin)])


def _aware(ts: datetime | None) -> datetime | None:
    return ts if ts is None or ts.tzinfo else ts.replace(tzinfo=UTC)


_PAST = {
    "to create": "created", "to update": "updated", "to reactivate": "reactivated",
    "to deactivate": "deactivated", "to rename": "renamed", "to restore": "restored",
    "to archive": "archived", "to add": "added", "to remove": "removed",
}  # fmt: skip


def done_summary(counts: dict[str, int]) -> str:
    """`summary` of what a run wrote: "30 users created; 42 memberships added"."""
    text = summary(counts)
    for todo, done in _PAST.items():
        text = text.replace(f" {todo}", f" {done}")
    return text


def run_summary(r: SyncRun) -> dict[str, Any]:
    """What a row shows of a run: outcome, counts in words, duration, error."""
    started, ended = _aware(r.started_at), _aware(r.ended_at)
    kept = r.plan if r.outcome in ("stopped", "planned") and r.plan else None
    counts = summary(kept.get("counts") or {}) if kept else done_summary(r.counts or {})
    return {
        "id": r.id,
        "outcome": r.outcome,
        "trigger": r.trigger,
        "dry_run": r.dry_run,
        "started_at": started,
        "seconds": (ended - started).total_seconds() if ended and started else None,
        "counts": counts,
        "error": r.error,
    }


def _last_event_at(s: Any, directory: str) -> datetime | None:
    """When the directory's newest audit event was written: one lookup on the (directory, id)
    index, not a scan of the audit table."""
    query = (
        select(AuditEvent.at)
        .where(AuditEvent.directory == directory)
        .order_by(AuditEvent.id.desc())  # type: ignore[union-attr]
        .limit(1)
    )
    return s.execute(query).scalar()


def directory_rows(state: Any) -> list[dict[str, Any]]:
    settings = state.settings()
    rows = []
    with session_scope(state.engine, write=False) as s:
        last_ids = newest_run_ids(s)
        failed_ids = newest_run_ids(s, SyncRun.error.is_not(None))  # type: ignore[union-attr]
        live_tokens = dict(
            s.execute(
                select(ScimToken.directory, func.count())
                .where(ScimToken.revoked_at.is_(None))  # type: ignore[union-attr]
                .group_by(ScimToken.directory)
            )
            .tuples()
            .all()
        )
        for name, d in settings.directories.items():
            row: dict[str, Any] = {"name": name, "kind": d.kind, "pull": d.kind != "scim"}
            if d.kind == "scim":
                row.update(
                    schedule="pushed by the IdP (SCIM)",
                    last_push=_aware(_last_event_at(s, name)),
                    tokens=live_tokens.get(name, 0),
                )
            else:
                last = s.get(SyncRun, last_ids[name]) if name in last_ids else None
                err = s.get(SyncRun, failed_ids[name]) if name in failed_ids else None
                running = state.runner.running(name)
                row.update(
                    schedule=str(d.schedule),
                    last=run_summary(last) if last else None,
                    last_error=run_summary(err) if err else None,
                    next_run=state.scheduler.next_run(name),
                    running=running.run_id if running else None,
                    is_running=running is not None,
                )
            rows.append(row)
    return rows


def target_rows(state: Any) -> list[dict[str, Any]]:
    from syncd import feed
    from syncd.targets import state as tstate

    rows = []
    for name, t in state.settings().targets.items():
        ts = tstate.get_state(state.engine, name)
        lag_n: int | None = None
        lag_s: float | None = None
        gone = False
        if ts.position is not None:
            try:
                lag = feed.lag(
                    state.engine, after=ts.position, directories=set(t.sources) if t.sources else None
                )
                lag_n, lag_s = lag.changes, lag.seconds
            except feed.FeedGone:
                gone = True
        rows.append(
            {
                "name": name,
                "kind": t.kind,
                "url": t.url,
                "sources": ", ".join(t.sources) if t.sources else "every directory",
                "schedule": str(t.full_reconcile),
                "connected": ts.position is not None,
                "gone": gone,
                "lag_changes": lag_n,
                "lag_seconds": lag_s,
                "last_delivery_at": _aware(ts.last_delivery_at),
                "last_full_at": _aware(ts.last_full_at),
                "delivered": ts.delivered,
                "last_error": ts.last_error,
                "last_error_at": _aware(ts.last_error_at),
            }
        )
    return rows


def overview(
    request: Request, *, status_code: int = 200, message: str | None = None, **extra: Any
) -> Response:
    state = daemon(request)
    return page(
        request,
        "overview.html",
        status_code=status_code,
        title="Overview",
        directories=directory_rows(state),
        targets=target_rows(state),
        message=message,
        **extra,
    )


@router.get("/", summary="Overview")
def overview_page(request: Request) -> Response:
    return overview(request)


@router.post("/directories/{name}/sync", summary="Sync a pull directory now")
def sync_now(
    request: Request,
    name: str,
    admin: Annotated[Admin, Depends(require_admin)],
    dry_run: Annotated[str | None, Form()] = None,
) -> Response:
    state = daemon(request)
    d = state.settings().directories.get(name)
    if d is None:
        return overview(request, status_code=404, message=f"There is no directory named {name!r}.")
    if d.kind == "scim":
        return overview(
            request,
            status_code=400,
            message=f"{name!r} is a push directory (kind scim): its IdP writes to syncd; "
            "there is nothing to pull.",
        )
    if getattr(state, "stopping", False):
        return overview(request, status_code=503, message="The daemon is stopping; no new sync starts.")
    plan_only = dry_run not in (None, "", "0", "false")
    try:
        handle = state.runner.trigger(name, dry_run=plan_only)
    except AlreadyRunning as exc:
        running = exc.handle.run_id
        return overview(
            request,
            status_code=409,
            message=f"A sync of {name!r} is already running"
            + (f" (run {running}); its page shows its progress." if running else "."),
            running_run=running,
        )
    handle.started.wait(START_WAIT_S)
    actions.record(
        state.engine,
        admin,
        action="directory.plan" if plan_only else "directory.sync",
        resource_type="directory",
        resource_id=name,
        directory=name,
        after={"run_id": handle.run_id, "dry_run": plan_only},
    )
    if handle.run_id is not None:
        return RedirectResponse(f"/runs/{handle.run_id}", status_code=303)
    r = handle.result
    if r is not None and r.outcome == "busy":
        return overview(
            request,
            status_code=409,
            message=f"A sync of {name!r} is already running in another syncd process: {r.error}",
        )
    why = r.error if r is not None else "it has not started yet; the Runs page will show it once it does"
    return overview(
        request, status_code=502 if r is not None else 202, message=f"The sync of {name!r} did not run: {why}"
    )
