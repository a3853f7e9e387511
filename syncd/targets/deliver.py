"""Follow the change feed from a target's own cursor and deliver each page.

The cursor (`target_state.position`) moves past a page only after every write of the page
was acknowledged; a target failure (refused, unreachable, throttled or 5xx after retries)
leaves it where it was, so the next pass resumes there and repeats at most one page, which
is idempotent (creates are looked up or adopted, adds/removes of members are set operations).
Per-object refusals (a 400) are recorded as the target's last error and do not hold the
cursor back: the next full reconcile retries them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Engine

from syncd import feed
from syncd.config.models import ScimTarget
from syncd.store.engine import session_scope
from syncd.store.models import utcnow
from syncd.targets import state as st
from syncd.targets.apply import Applier
from syncd.targets.client import ScimClient
from syncd.targets.desired import load_subset
from syncd.targets.errors import Gone
from syncd.targets.incremental import Touched, plan_changes, touched
from syncd.targets.plan import TargetPlan
from syncd.targets.reconcile import Outcome

PAGE = 500


def sources_of(settings: ScimTarget) -> frozenset[str] | None:
    return frozenset(settings.sources) if settings.sources is not None else None


def _members_of_gone_teams(
    engine: Engine, name: str, client: ScimClient, t: Touched, idmap: st.IdMap
) -> None:
    """Users of teams that were deleted or archived may leave the desired state: find them from
    the target's copy of the team (the store no longer has its memberships)."""
    for tid in sorted(t.teams_emptied):
        m = idmap.get(("team", tid))
        if m is None or m.remote_id is None:
            continue
        try:
            got = client.get("Groups", m.remote_id)
        except Gone:
            continue
        remote_ids = {x.get("value") for x in got.get("members") or [] if isinstance(x, dict)}
        for rid in remote_ids:
            if isinstance(rid, str):
                owner = st.owner_of(engine, name, "user", rid)
                if owner is not None:
                    t.users.add(owner)
                    t.members.setdefault(tid, set()).add(owner)


def _unmapped(idmap: st.IdMap, kind: str, local_id: str) -> bool:
    m = idmap.get((kind, local_id))
    return m is None or m.remote_id is None


def deliver_page(
    engine: Engine,
    name: str,
    settings: ScimTarget,
    client: ScimClient,
    changes: list[feed.FeedChange],
    *,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> tuple[TargetPlan, dict[str, int], list[str]]:
    t = touched(changes)
    keys = [("user", u) for u in t.users] + [("team", x) for x in t.teams]
    idmap = st.load_some(engine, name, keys)
    _members_of_gone_teams(engine, name, client, t, idmap)
    idmap.update(st.load_some(engine, name, [("user", u) for u in t.users if ("user", u) not in idmap]))
    with session_scope(engine, write=False) as s:
        desired = load_subset(s, settings, user_ids=t.users, team_ids=t.teams)
        # members of teams about to be created must be delivered (and active) on the target first
        new_teams = [d for tid, d in desired.teams.items() if _unmapped(idmap, "team", tid)]
        extra = {u for d in new_teams for u in d.members} - t.users
        if extra:
            idmap.update(st.load_some(engine, name, [("user", u) for u in extra]))
            t.users |= extra
            desired = load_subset(s, settings, user_ids=t.users, team_ids=t.teams)
    plan = plan_changes(desired, idmap, t, settings)
    applier = Applier(engine, name, settings, client, idmap, on_progress=on_progress)
    res = applier.apply(plan, desired)
    return plan, res.applied, res.errors


def deliver(
    engine: Engine,
    name: str,
    settings: ScimTarget,
    client: ScimClient,
    *,
    page_size: int = PAGE,
    max_pages: int | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    now: Callable[[], float] = time.monotonic,
) -> Outcome:
    """Deliver every change after the target's cursor (the cursor must be set: a full reconcile
    sets it on first connect). TargetError propagates with the cursor at the last acknowledged
    page; feed.FeedGone when the cursor is older than the feed keeps (the caller resyncs)."""
    t0 = now()
    out = Outcome(name, "incremental")
    position = st.get_state(engine, name).position
    sources = sources_of(settings)
    pages = 0
    total = TargetPlan()
    while max_pages is None or pages < max_pages:
        page = feed.read(engine, after=position, limit=page_size, directories=sources)
        pages += 1
        if not page.changes:
            if page.next != position:
                st.update_state(engine, name, position=page.next)
            break
        plan, applied, errors = deliver_page(
            engine, name, settings, client, page.changes, on_progress=on_progress
        )
        _merge(total, plan)
        for k, v in applied.items():
            out.applied[k] = out.applied.get(k, 0) + v
        out.errors.extend(errors)
        out.changes += len(page.changes)
        delivered = st.get_state(engine, name).delivered + len(page.changes)
        values: dict[str, object] = {
            "position": page.next,
            "last_delivery_at": utcnow(),
            "delivered": delivered,
        }
        if errors:
            values.update(last_error=errors[0], last_error_at=utcnow())
        st.update_state(engine, name, **values)
        position = page.next
        if len(page.changes) < page_size:
            break
    out.plan = total
    out.seconds = now() - t0
    return out


def _merge(into: TargetPlan, plan: TargetPlan) -> None:
    into.create_users += plan.create_users
    into.update_users += plan.update_users
    into.activate_users += plan.activate_users
    into.leave_users += plan.leave_users
    into.create_teams += plan.create_teams
    into.rename_teams += plan.rename_teams
    for k, v in plan.add_members.items():
        into.add_members.setdefault(k, []).extend(v)
    for k, v in plan.remove_members.items():
        into.remove_members.setdefault(k, []).extend(v)
    into.delete_teams += plan.delete_teams
    into.notes += [n for n in plan.notes if n not in into.notes]
