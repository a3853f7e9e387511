"""The admin API under `/v1` (admin-token auth: `syncd token create --admin`).

    POST /v1/logins                     {"directory", "user"} → the user's teams, fresh or stale
    POST /v1/directories/{name}/sync    {"dry_run"?, "allow_deletes"?, "wait"?} → 202 (or 200 with
                                        wait) | 409 when a sync of the directory already runs
    GET  /v1/runs?directory=&limit=     recent sync runs, newest first
    GET  /v1/runs/{id}                  one run with its kept plan
    GET  /v1/directories                configured directories: last run, cursor age, next run

Errors are JSON `{"detail": ...}` with the HTTP status; 401 carries `WWW-Authenticate: Bearer`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from syncd.daemon.login import LoginError
from syncd.daemon.runner import START_WAIT_S, AlreadyRunning, RunHandle
from syncd.service import limits, tokens
from syncd.store import session_scope
from syncd.store.models import ConnectorCursor, SyncRun

MAX_LIMIT = 1000


def _state(request: Request) -> Any:
    return request.app.state.daemon


def admin_token(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    """The id of the request's admin token; 401 otherwise (SCIM tokens are not admin tokens)."""
    scheme, _, secret = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise HTTPException(401, "an admin bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    with session_scope(_state(request).engine) as s:
        row = tokens.authenticate(s, secret.strip(), kind="admin")
        if row is None:
            raise HTTPException(
                401,
                "the token is not a live admin token",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return row.id


router = APIRouter(prefix="/v1", tags=["Admin"], dependencies=[Depends(admin_token)])


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    directory: str = Field(min_length=1, max_length=128)
    user: str = Field(min_length=1, max_length=512, description="IdP id, userName or email")


class SyncRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dry_run: bool = False
    allow_deletes: bool = False
    wait: bool = False


@router.post("/logins", summary="On-login sync of one user")
def login(request: Request, body: LoginRequest) -> Any:
    try:
        result = _state(request).login.sync(body.directory, body.user)
    except LoginError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    data = result.to_dict()
    if not result.found and not result.stale:
        return JSONResponse({"detail": result.error, **data}, status_code=404)
    return data


@router.post("/directories/{name}/sync", summary="Start a pull of one directory")
def trigger_sync(
    request: Request,
    name: str,
    body: SyncRequest | None = None,
    dry_run: Annotated[bool | None, Query()] = None,
) -> Any:
    state = _state(request)
    opts = body or SyncRequest()
    if dry_run is not None:
        opts = opts.model_copy(update={"dry_run": dry_run})
    d = state.settings().directories.get(name)
    if d is None:
        raise HTTPException(404, f"no directory named {name!r}")
    if d.kind == "scim":
        raise HTTPException(400, f"{name!r} is push-only (kind scim); nothing to pull")
    if state.stopping:
        raise HTTPException(503, "the daemon is stopping")
    try:
        handle = state.runner.trigger(name, dry_run=opts.dry_run, allow_deletes=opts.allow_deletes)
    except AlreadyRunning as exc:
        return JSONResponse({"detail": str(exc), "run_id": exc.handle.run_id}, status_code=409)
    if opts.wait:
        handle.done.wait()
    else:
        handle.started.wait(START_WAIT_S)
    return _answer(handle, opts.wait)


def _answer(handle: RunHandle, waited: bool) -> Any:
    r = handle.result
    if r is not None and r.outcome == "busy":
        return JSONResponse({"detail": r.error, "run_id": None}, status_code=409)
    link = f"/v1/runs/{handle.run_id}" if handle.run_id else None
    if waited and r is not None:
        data = r.to_dict()
        if r.plan is not None and handle.dry_run:
            data["plan"] = r.plan.to_dict()
        return {**data, "link": link}
    return JSONResponse(
        {
            "run_id": handle.run_id,
            "directory": handle.directory,
            "dry_run": handle.dry_run,
            "status": r.outcome if r is not None else "running",
            "error": r.error if r is not None else None,
            "link": link,
        },
        status_code=202,
    )


def _iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).isoformat()


def run_dict(r: SyncRun, *, plan: bool = False) -> dict[str, Any]:
    secs = (r.ended_at - r.started_at).total_seconds() if r.ended_at else None
    out = {
        "id": r.id,
        "directory": r.directory,
        "trigger": r.trigger,
        "mode": r.mode,
        "dry_run": r.dry_run,
        "outcome": r.outcome,
        "started_at": _iso(r.started_at),
        "ended_at": _iso(r.ended_at),
        "seconds": round(secs, 3) if secs is not None else None,
        "counts": r.counts,
        "api_calls": r.api_calls,
        "throttles": r.throttles,
        "error": r.error,
    }
    if plan:
        out["plan"] = r.plan
    return out


@router.get("/runs", summary="Recent sync runs, newest first")
def list_runs(
    request: Request,
    directory: str | None = None,
    trigger: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> dict[str, Any]:
    if any(v and not limits.storable_id(v) for v in (directory, trigger)):
        return {"runs": []}  # no run has it (and PostgreSQL refuses a NUL in a query)
    q = select(SyncRun).order_by(SyncRun.id.desc()).limit(limit)  # type: ignore[union-attr]
    if directory:
        q = q.where(SyncRun.directory == directory)
    if trigger:
        q = q.where(SyncRun.trigger == trigger)
    with session_scope(_state(request).engine, write=False) as s:
        return {"runs": [run_dict(r) for r in s.execute(q).scalars()]}


@router.get("/runs/{run_id}", summary="One sync run with its kept plan")
def get_run(request: Request, run_id: int) -> dict[str, Any]:
    with session_scope(_state(request).engine, write=False) as s:
        r = s.get(SyncRun, run_id)
        if r is None:
            raise HTTPException(404, f"no sync run {run_id}")
        return run_dict(r, plan=True)


def newest_run_ids(s: Any, *where: Any) -> dict[str, int]:
    """directory → the id of its newest sync run matching `where` (all runs when empty)."""
    query = select(SyncRun.directory, func.max(SyncRun.id)).where(*where).group_by(SyncRun.directory)
    return dict(s.execute(query).tuples().all())


@router.get("/directories", summary="Configured directories and their sync state")
def directories(request: Request) -> dict[str, Any]:
    state = _state(request)
    settings = state.settings()
    now = datetime.now(UTC)
    out = []
    with session_scope(state.engine, write=False) as s:
        last_ids = newest_run_ids(s)
        ok_ids = newest_run_ids(s, SyncRun.outcome == "applied")
        cursors = dict(
            s.execute(
                select(ConnectorCursor.directory, ConnectorCursor.updated_at).where(
                    ConnectorCursor.name == "default"
                )
            )
            .tuples()
            .all()
        )
        for name, d in settings.directories.items():
            entry: dict[str, Any] = {"name": name, "kind": d.kind}
            if d.kind != "scim":
                last = s.get(SyncRun, last_ids[name]) if name in last_ids else None
                ok = s.get(SyncRun, ok_ids[name]) if name in ok_ids else None
                cur = cursors.get(name)
                nxt = state.scheduler.next_run(name)
                running = state.runner.running(name)
                entry.update(
                    schedule=str(d.schedule),
                    last_run=run_dict(last) if last else None,
                    last_success=run_dict(ok) if ok else None,
                    cursor_age_seconds=(
                        round((now - (cur if cur.tzinfo else cur.replace(tzinfo=UTC))).total_seconds(), 1)
                        if cur
                        else None
                    ),
                    next_run=_iso(nxt),
                    running={"trigger": running.trigger, "run_id": running.run_id} if running else None,
                )
            out.append(entry)
    return {"directories": out}
