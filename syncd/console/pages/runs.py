"""Runs: history, one run's planned changes by object, live progress, **Approve and apply**.

    GET  /runs?directory=&outcome=&trigger=&page=   runs, newest first, 50 a page
    GET  /runs/{id}?page=                           the run and its kept plan, one line per
                                                    change (names, then ids), 100 a page
    GET  /runs/{id}/events                          SSE: the run's status (EventSource polls it)
    POST /runs/{id}/approve                         form: csrf → 303 to the approval's run, or
                                                    409 with why (the directory changed since)

Plan lines are `cli.planview.lines`, the same lines `syncd runs show` prints: names with
control characters made visible, grouped per object. An approval is `approve_run`, audited as
`pull:<admin>`, plus a `sync_run.approve` console event.
"""

from __future__ import annotations

import asyncio
import json
from itertools import islice
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from rich.text import Text
from sqlalchemy import func, select

from cli.planview import count, lines, summary
from syncd.console import actions
from syncd.console.deps import Admin, daemon, require_admin
from syncd.console.notfound import not_found
from syncd.console.pages.overview import run_summary
from syncd.console.paging import pager
from syncd.console.render import page
from syncd.reconcile.approve import ApprovalRefused, DirectoryBusy, approve_run
from syncd.service import limits
from syncd.store import session_scope
from syncd.store.models import SyncRun

router = APIRouter(dependencies=[Depends(require_admin)])

#: plan lines per page of a run
PLAN_PAGE = 100
#: outcomes and triggers offered by the filters (others still filter by URL)
OUTCOMES = ("running", "applied", "partial", "planned", "stopped", "failed", "abandoned", "busy")
TRIGGERS = ("schedule", "api", "cli", "approve", "login", "demo")
#: milliseconds the browser waits before asking for a running run's status again
EVENT_RETRY_MS = 1500


def plan_line(t: Text) -> dict[str, str]:
    """A planview line as its sign, its words and its ids (the dim tail)."""
    plain = t.plain
    ids_at = next((sp.start for sp in t.spans if sp.style == "dim"), len(plain))
    return {"sign": plain[:1], "words": plain[1:ids_at].strip(), "ids": plain[ids_at:].strip()}


def _filters(request: Request) -> dict[str, str]:
    q = request.query_params
    return {k: q.get(k, "").strip() for k in ("directory", "outcome", "trigger")}


@router.get("/runs", summary="Sync runs")
def runs_page(request: Request) -> Response:
    state = daemon(request)
    f = _filters(request)
    conds = [getattr(SyncRun, k) == v for k, v in f.items() if v]
    rows: list[dict[str, Any]] = []
    total = 0
    if all(limits.storable_id(v) for v in f.values() if v):  # PostgreSQL refuses a NUL
        with session_scope(state.engine, write=False) as s:
            total = s.execute(select(func.count()).select_from(SyncRun).where(*conds)).scalar_one()
            p = pager(request, total)
            q = select(SyncRun).where(*conds).order_by(SyncRun.id.desc()).offset(p.offset).limit(p.size)  # type: ignore[union-attr]
            rows = [{**run_summary(r), "directory": r.directory} for r in s.execute(q).scalars()]
    p = pager(request, total)
    return page(
        request,
        "runs.html",
        title="Runs",
        runs=rows,
        pager=p,
        filters=f,
        directories=list(state.settings().directories),
        outcomes=OUTCOMES,
        triggers=TRIGGERS,
    )


def run_page(
    request: Request,
    run_id: int,
    *,
    status_code: int = 200,
    refusal: ApprovalRefused | None = None,
    busy: bool = False,
) -> Response:
    state = daemon(request)
    with session_scope(state.engine, write=False) as s:
        r = s.get(SyncRun, run_id)
        if r is None:
            return _no_run(request, run_id)
        run = {
            **run_summary(r),
            "directory": r.directory,
            "mode": r.mode,
            "api_calls": r.api_calls,
            "throttles": r.throttles,
            "ended_at": r.ended_at,
        }
        plan = r.plan or {}
    total = count(plan) if plan else 0
    p = pager(request, total, size=PLAN_PAGE)
    shown = [plan_line(t) for t in islice(lines(plan), p.offset, p.offset + p.size)] if plan else []
    settings = state.settings()
    d = settings.directories.get(run["directory"])
    return page(
        request,
        "run.html",
        status_code=status_code,
        title=f"Run {run_id}",
        run=run,
        plan=plan,
        plan_summary=(
            run["counts"]  # what it wrote, in the past tense
            if run["outcome"] in ("applied", "partial")
            else summary(plan.get("counts") or {})
            if plan
            else None
        ),
        changes=shown,
        pager=p,
        notes=list(plan.get("notes") or ()),
        approvable=run["outcome"] == "stopped" and bool(plan) and not plan.get("approved_by_run"),
        approved_by=plan.get("approved_by_run"),
        approves=plan.get("approves_run"),
        refusal=refusal,
        busy=busy,
        can_plan=d is not None and d.kind != "scim",
    )


@router.get("/runs/{run_id}", summary="One sync run and its planned changes")
def run_detail(request: Request, run_id: str) -> Response:
    return run_page(request, int(run_id)) if _is_id(run_id) else _no_run(request, run_id)


@router.post("/runs/{run_id}/approve", summary="Approve and apply a safety-stopped run's kept plan")
def approve(request: Request, run_id: str, admin: Annotated[Admin, Depends(require_admin)]) -> Response:
    if not _is_id(run_id):
        return _no_run(request, run_id)
    return _approve(request, int(run_id), admin)


def _approve(request: Request, run_id: int, admin: Admin) -> Response:
    state = daemon(request)
    with session_scope(state.engine, write=False) as s:
        kept = s.get(SyncRun, run_id)
        directory = kept.directory if kept is not None else None
    if directory is None:
        return _no_run(request, run_id)
    try:
        result = approve_run(state.engine, run_id, actor=admin.actor)
    except DirectoryBusy as exc:  # nothing was checked: the same plan may be approved later
        return run_page(request, run_id, status_code=409, refusal=exc, busy=True)
    except ApprovalRefused as exc:
        actions.record(
            state.engine,
            admin,
            action="sync_run.approve_refused",
            resource_type="sync_run",
            resource_id=str(run_id),
            directory=directory,
            after={"problem": exc.problem},
        )
        return run_page(request, run_id, status_code=409, refusal=exc)
    actions.record(
        state.engine,
        admin,
        action="sync_run.approve",
        resource_type="sync_run",
        resource_id=str(run_id),
        directory=directory,
        after={"approval_run": result.run_id, "outcome": result.outcome},
    )
    return RedirectResponse(f"/runs/{result.run_id or run_id}", status_code=303)


def _is_id(raw: str) -> bool:
    return raw.isascii() and raw.isdigit() and len(raw) < 19


def _no_run(request: Request, raw: Any) -> Response:
    return not_found(request, f"There is no sync run {raw}.", back="/runs", back_label="All runs")


def _status(engine: Any, run_id: int) -> dict[str, Any] | None:
    with session_scope(engine, write=False) as s:
        r = s.get(SyncRun, run_id)
        if r is None:
            return None
        shown = run_summary(r)
        return {
            "id": r.id,
            "directory": r.directory,
            "outcome": r.outcome,
            "summary": shown["counts"],
            "error": r.error,
            "done": r.outcome != "running",
        }


@router.get("/runs/{run_id}/events", summary="A run's progress as server-sent events")
async def run_events(request: Request, run_id: str) -> Response:
    """One `event: status` (outcome, counts in words, `"done"` once the run has ended), then the
    response ends; `retry` tells the browser's EventSource to ask again in `EVENT_RETRY_MS`.
    No response stays open, so leaving the page never cuts a request short."""
    state = daemon(request)
    if not _is_id(run_id):
        return _no_run(request, run_id)
    st = await asyncio.to_thread(_status, state.engine, int(run_id))
    body = "event: gone\ndata: {}\n\n" if st is None else f"event: status\ndata: {json.dumps(st)}\n\n"
    return Response(
        f"retry: {EVENT_RETRY_MS}\n\n{body}",
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store"},
    )
