"""Builders for delivery tests: store rows written through the service layer, a target's
settings, and the desired state a target must end up equal to."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Engine

from syncd.config.models import ScimTarget
from syncd.service import teams, tokens, users
from syncd.service.context import Actor
from syncd.store import session_scope
from syncd.targets.desired import load_desired

TOKEN = "sk-test-scim"
#: the target's name: unique per test process, since PostgreSQL advisory locks are database-wide
NAME = f"gw-{uuid.uuid4().hex[:10]}"


def actor(directory: str) -> Actor:
    return Actor("pull", directory, directory)


def setup_dirs(engine: Engine, *names: str) -> None:
    with session_scope(engine) as s:
        for n in names:
            tokens.ensure_directory(s, name=n, kind="graph")


def add_user(
    engine: Engine,
    directory: str,
    user_name: str,
    *,
    email: str | None = None,
    active: bool = True,
    ext: str | None = None,
    **extra: Any,
) -> str:
    body = {
        "userName": user_name,
        "externalId": ext or f"ext-{user_name}",
        "active": active,
        "emails": [{"value": email or user_name, "type": "work", "primary": True}],
        "name": {"givenName": user_name.split("@")[0].title(), "familyName": "Test"},
        **extra,
    }
    with session_scope(engine) as s:
        return users.create_user(s, actor=actor(directory), body=body).id


def add_team(engine: Engine, directory: str, name: str, member_ids: list[str] = ()) -> str:  # type: ignore[assignment]
    with session_scope(engine) as s:
        t = teams.create_team(
            s, actor=actor(directory), body={"displayName": name, "externalId": f"g-{name}"}
        )
        if member_ids:
            teams.change_members(s, actor=actor(directory), team_id=t.id, add=list(member_ids))
        return t.id


def target(url: str, **kw: Any) -> ScimTarget:
    return ScimTarget.model_validate({"kind": "scim", "url": url, "token": TOKEN, "concurrency": 2, **kw})


def expected(engine: Engine, settings: ScimTarget) -> tuple[dict[str, str | None], dict[str, frozenset[str]]]:
    """({userName casefolded: primary email}, {team name: member userNames casefolded})."""
    with session_scope(engine, write=False) as s:
        d = load_desired(s, settings)
    us = {u.user_name.casefold(): u.email for u in d.users.values()}
    ts = {
        t.display_name: frozenset(d.users[m].user_name.casefold() for m in t.members)
        for t in d.teams.values()
    }
    return us, ts


def gateway_state(gw: Any) -> tuple[dict[str, str | None], dict[str, frozenset[str]]]:
    """The gateway fake's active users and its teams with their active members, in the shape of
    `expected` (a deactivated user keeps its teams on the target)."""
    users_, teams_ = gw.snapshot()
    us = {n.casefold(): e for n, e, active in users_.values() if active}
    ts = {alias: frozenset(m.casefold() for m in ms if m.casefold() in us) for alias, ms in teams_.values()}
    return us, ts


def differences(got: Any, want: Any) -> list[str]:
    """What differs between two `expected`-shaped states, readably (for assertion messages)."""
    (gu, gt), (wu, wt) = got, want
    out = [
        f"user {k}: target {gu.get(k)!r}, store {wu.get(k)!r}"
        for k in sorted(set(gu) | set(wu))
        if gu.get(k) != wu.get(k)
    ]
    for k in sorted(set(gt) | set(wt)):
        if gt.get(k) != wt.get(k):
            g, w = gt.get(k), wt.get(k)
            if g is None or w is None:
                out.append(f"team {k}: {'missing on the target' if g is None else 'not in the store'}")
            else:
                out.append(f"team {k}: extra {sorted(g - w)}, missing {sorted(w - g)}")
    return out
