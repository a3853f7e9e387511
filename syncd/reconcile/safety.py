"""Safety checks between plan and apply (DESIGN.md rules 1 and 2).

1. An incomplete snapshot may add and update, never remove: its removals are dropped.
2. Removals above a threshold (count or percentage of what the directory holds, per kind)
   stop the run before anything is written, unless explicitly allowed.
"""

from __future__ import annotations

from dataclasses import dataclass

from syncd.reconcile.plan import Plan
from syncd.reconcile.view import StoreView


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Per kind of removal: stop when the count exceeds `max_count` or `max_percent` % of the
    directory's stored objects of that kind (whichever is hit first). Small directories are
    protected by `min_base`: percentages apply only when at least that many objects exist."""

    max_count: int = 500
    max_percent: float = 20.0
    min_base: int = 20


class SafetyStop(Exception):
    """The plan removes more than allowed; nothing was written."""

    def __init__(self, reasons: list[str], plan: Plan) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons
        self.plan = plan


def check(plan: Plan, view: StoreView, thresholds: Thresholds, *, allow_deletes: bool = False) -> Plan:
    """The plan that may be applied, or SafetyStop. Never mutates `plan`."""
    if not plan.complete:
        dropped = sum(plan.removals().values())
        plan = plan.without_removals()
        if dropped:
            plan.notes.append(f"snapshot incomplete: {dropped} removal(s) skipped until a complete read")
    if allow_deletes:
        return plan
    base = {
        "deactivate_user": sum(1 for u in view.users.values() if u.active),
        "archive_team": sum(1 for t in view.teams.values() if not t.archived),
        "remove_members": sum(len(m) for m in view.members.values()),
    }
    reasons = []
    for kind, n in plan.removals().items():
        if n == 0:
            continue
        if n > thresholds.max_count:
            reasons.append(f"{n} {kind} exceeds the limit of {thresholds.max_count}")
        elif base[kind] >= thresholds.min_base and 100.0 * n / base[kind] > thresholds.max_percent:
            reasons.append(
                f"{n} {kind} is {100.0 * n / base[kind]:.0f}% of {base[kind]}, "
                f"over the limit of {thresholds.max_percent:g}%"
            )
    if reasons:
        raise SafetyStop(reasons, plan)
    return plan
