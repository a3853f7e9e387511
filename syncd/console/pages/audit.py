"""Audit: every recorded change and console action, filterable, with names as well as ids.

    GET /audit?directory=&actor=&action=&since=&until=&page=
        directory: exact; actor: contains (case-sensitive, as stored); action: exact or a
        prefix ending in "." ("team." for every team action); since/until: ISO 8601 dates or
        date-times (`datetime-local` inputs), UTC unless they carry an offset; 50 a page,
        newest first

An unreadable time is reported and ignored rather than refused.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import func, select

from syncd.console.audit_rows import audit_rows
from syncd.console.deps import daemon, require_admin
from syncd.console.paging import pager
from syncd.console.render import page
from syncd.service import limits
from syncd.store import session_scope
from syncd.store.models import AuditEvent

router = APIRouter(dependencies=[Depends(require_admin)])


def parse_time(raw: str) -> datetime | None:
    """An ISO 8601 date or date-time as an aware UTC datetime; ValueError when unreadable."""
    if not raw:
        return None
    ts = datetime.fromisoformat(raw)
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


@router.get("/audit", summary="Audit trail")
def audit_page(request: Request) -> Response:
    state = daemon(request)
    qp = request.query_params
    f = {k: qp.get(k, "").strip() for k in ("directory", "actor", "action", "since", "until", "run")}
    conds: list[Any] = []
    problems: list[str] = []
    searchable = all(limits.storable_id(f[k]) for k in ("directory", "actor", "action"))
    if f["directory"]:
        conds.append(AuditEvent.directory == f["directory"])
    if f["run"]:
        if f["run"].isdigit() and len(f["run"]) < 19:
            conds.append(AuditEvent.sync_run_id == int(f["run"]))
        else:
            problems.append(f"run {f['run']!r} is not a run number; it was ignored")
    if f["actor"]:
        conds.append(AuditEvent.actor.contains(f["actor"], autoescape=True))  # type: ignore[attr-defined]
    if f["action"]:
        if f["action"].endswith("."):
            conds.append(AuditEvent.action.startswith(f["action"], autoescape=True))  # type: ignore[attr-defined]
        else:
            conds.append(AuditEvent.action == f["action"])
    for key, op in (("since", "__ge__"), ("until", "__le__")):
        try:
            ts = parse_time(f[key])
        except ValueError:
            problems.append(
                f"{key} {f[key]!r} is not a date or date-time (e.g. 2026-11-30T09:00); it was ignored"
            )
            continue
        if ts is not None:
            conds.append(getattr(AuditEvent.at, op)(ts))
    rows: list[dict[str, Any]] = []
    total = 0
    if searchable:
        with session_scope(state.engine, write=False) as s:
            total = s.execute(select(func.count()).select_from(AuditEvent).where(*conds)).scalar_one()
            p = pager(request, total)
            events = list(
                s.execute(
                    select(AuditEvent)
                    .where(*conds)
                    .order_by(AuditEvent.id.desc())
                    .offset(p.offset)
                    .limit(p.size)  # type: ignore[union-attr]
                ).scalars()
            )
            rows = audit_rows(s, events)
    return page(
        request,
        "audit.html",
        title="Audit",
        events=rows,
        filters=f,
        problems=problems,
        directories=list(state.settings().directories),
        pager=pager(request, total),
    )
