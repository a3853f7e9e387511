"""Audit events as the console shows them: with the names of what they name, not only ids.

`audit_rows` resolves, in one query per kind, the userName of users (and of console `login`
events), the displayName of teams and the name of tokens; a resource deleted since keeps its
id and the name its event recorded, if any. `details` is the event's before/after as compact
JSON, cut at `DETAIL_CHARS`.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from syncd.store.models import AuditEvent, ScimToken, Team, User

#: characters of an event's before/after shown
DETAIL_CHARS = 2000


def _names(session: Session, model: Any, column: Any, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = session.execute(select(model.id, column).where(model.id.in_(sorted(ids)))).tuples()
    return {i: n for i, n in rows}


def _recorded_name(ev: AuditEvent) -> str | None:
    for side in (ev.after, ev.before):
        if isinstance(side, dict):
            for key in ("userName", "displayName", "user_name", "display_name", "name"):
                if isinstance(side.get(key), str) and side[key]:
                    return side[key]
    return None


def _link(kind: str, rid: str) -> str | None:
    if kind in ("user", "login"):
        return f"/users/{rid}"
    if kind == "team":
        return f"/teams/{rid}"
    if kind == "sync_run" and rid.isdigit():
        return f"/runs/{rid}"
    if kind == "directory":
        return f"/runs?directory={rid}"
    return None


def _detail(ev: AuditEvent) -> str | None:
    parts = {k: v for k, v in (("before", ev.before), ("after", ev.after)) if v}
    if not parts:
        return None
    text = json.dumps(parts, ensure_ascii=False, default=str, sort_keys=True)
    return text if len(text) <= DETAIL_CHARS else text[:DETAIL_CHARS] + " …"


def audit_rows(session: Session, events: list[AuditEvent]) -> list[dict[str, Any]]:
    """One dict per event: its fields, `name` (resolved or recorded), `link`, `details`."""
    ids: dict[str, set[str]] = {"user": set(), "team": set(), "token": set()}
    for ev in events:
        kind = "user" if ev.resource_type == "login" else ev.resource_type
        if kind in ids:
            ids[kind].add(ev.resource_id)
    users = _names(session, User, User.user_name, ids["user"])
    teams = _names(session, Team, Team.display_name, ids["team"])
    toks = _names(session, ScimToken, ScimToken.name, ids["token"])
    found = {"user": users, "login": users, "team": teams, "token": toks}
    out = []
    for ev in events:
        name = found.get(ev.resource_type, {}).get(ev.resource_id)
        if ev.resource_type == "sync_run":
            name = f"run {ev.resource_id}"
        elif ev.resource_type == "directory":
            name = ev.resource_id
        out.append(
            {
                "id": ev.id,
                "at": ev.at,
                "directory": ev.directory,
                "actor": ev.actor,
                "action": ev.action,
                "resource_type": ev.resource_type,
                "resource_id": ev.resource_id,
                "name": name or _recorded_name(ev),
                "gone": name is None and ev.resource_type in ("user", "team", "login"),
                "link": _link(ev.resource_type, ev.resource_id),
                "run_id": ev.sync_run_id,
                "details": _detail(ev),
            }
        )
    return out
