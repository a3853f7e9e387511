"""The full reconcile of one target: read it back, match, diff, safety, apply.

Run on first connect (no cursor yet), on the target's `full_reconcile` schedule and on
`push --once --full`; `--dry-run` stops after the plan. The caller holds the target's lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from syncd.config.models import ScimTarget
from syncd.store.engine import session_scope
from syncd.targets import state as st
from syncd.targets.apply import Applier
from syncd.targets.client import ScimClient
from syncd.targets.desired import Desired, load_desired
from syncd.targets.diff import diff
from syncd.targets.plan import TargetPlan
from syncd.targets.remote import RemoteState, read_target
from syncd.targets.safety import check


@dataclass
class Outcome:
    """What one delivery pass did. `outcome`: applied | planned | stopped | failed | refused |
    unreachable | busy; `mode`: full | incremental."""

    target: str
    mode: str
    outcome: str = "applied"
    plan: TargetPlan | None = None
    applied: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    error: str | None = None
    changes: int = 0
    requests: int = 0
    writes: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    team_names: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "mode": self.mode,
            "outcome": self.outcome,
            "planned": self.plan.counts() if self.plan else {},
            "plan": self.plan.items(self.team_names) if self.plan else [],
            "notes": self.plan.notes if self.plan else [],
            "applied": self.applied,
            "errors": self.errors,
            "error": self.error,
            "changes": self.changes,
            "requests": self.requests,
            "writes": self.writes,
            "by_status": self.by_status,
            "seconds": round(self.seconds, 2),
        }


def removal_base(remote: RemoteState, idmap: st.IdMap) -> dict[str, int]:
    users = sum(1 for (k, _), m in idmap.items() if k == "user" and m.remote_id and not m.left)
    teams = [m.remote_id for (k, _), m in idmap.items() if k == "team" and m.remote_id]
    links = sum(len(remote.groups[r].members) for r in teams if r in remote.groups)
    return {"leave_user": users, "delete_team": len(teams), "remove_members": links}


def full_reconcile(
    engine: Engine,
    name: str,
    settings: ScimTarget,
    client: ScimClient,
    *,
    dry_run: bool = False,
    allow_deletes: bool = False,
    on_progress: Callable[[str, int, int], None] | None = None,
    now: Callable[[], float] = time.monotonic,
) -> Outcome:
    """One full pass; TargetError from the target (refused, unreachable after retries) propagates,
    TargetSafetyStop too (nothing written)."""
    t0 = now()
    out = Outcome(name, "full")
    with session_scope(engine, write=False) as s:
        desired: Desired = load_desired(s, settings)
    out.team_names = {tid: t.display_name for tid, t in desired.teams.items()}
    remote = read_target(client, on_page=lambda r, n: on_progress and on_progress(f"reading {r}", n, 0))
    idmap = st.load_map(engine, name)
    pending = [
        lid
        for (k, lid), m in idmap.items()
        if k == "user" and m.remote_id is None and lid not in desired.users
    ]
    plan = diff(
        desired,
        remote,
        idmap,
        on_user_left=settings.on_user_left,
        on_team_left=settings.on_team_left,
        pending_names=_identities(engine, pending),
    )
    out.plan = plan
    check(plan, removal_base(remote, idmap), settings.safety, allow_deletes=allow_deletes)
    if dry_run:
        out.outcome = "planned"
    else:
        applier = Applier(
            engine, name, settings, client, idmap, careful=not remote.complete, on_progress=on_progress
        )
        res = applier.apply(plan, desired)
        out.applied, out.errors = res.applied, res.errors
        st.update_state(engine, name, last_full_at=_utcnow())
    out.seconds = now() - t0
    return out


def _identities(engine: Engine, user_ids: list[str]) -> dict[str, tuple[str, str | None]]:
    """(userName, first email) of these users, where the store still has them."""
    if not user_ids:
        return {}
    from sqlalchemy import select

    from syncd.store.models import User, UserEmail

    out: dict[str, tuple[str, str | None]] = {}
    with session_scope(engine, write=False) as s:
        for i in range(0, len(user_ids), 500):
            part = user_ids[i : i + 500]
            names = dict(s.execute(select(User.id, User.user_name).where(User.id.in_(part))).tuples().all())
            emails: dict[str, str] = {}
            q = select(UserEmail.user_id, UserEmail.value).where(UserEmail.user_id.in_(part))
            for uid, value in s.execute(q).tuples():
                emails.setdefault(uid, value)
            out.update({uid: (n, emails.get(uid)) for uid, n in names.items()})
    return out


def _utcnow() -> Any:
    from syncd.store.models import utcnow

    return utcnow()
