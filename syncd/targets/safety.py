"""Safety thresholds of a delivery, with the keys and meaning of a directory's `[safety]`.

Removals (users deactivated or deleted on the target, teams deleted, memberships removed)
above `max_removals`, or above `max_removal_percent` of what syncd manages on the target (once
it manages at least `min_base` of that kind), stop the delivery before any write, unless
`allow_deletes`. An incomplete read of the target has already lost its removals in `diff`.
"""

from __future__ import annotations

from syncd.config.models import SafetySettings
from syncd.targets.plan import TargetPlan


class TargetSafetyStop(Exception):
    """The plan removes more than allowed; nothing was written."""

    def __init__(self, reasons: list[str], plan: TargetPlan) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons
        self.plan = plan


def check(
    plan: TargetPlan, base: dict[str, int], safety: SafetySettings, *, allow_deletes: bool = False
) -> TargetPlan:
    """`plan` if it may be applied, else TargetSafetyStop. `base[kind]` is how many objects of
    that removal kind syncd manages on the target (users, teams, memberships)."""
    if allow_deletes or safety.allow_deletes:
        return plan
    reasons = []
    for kind, n in plan.removals().items():
        if n == 0:
            continue
        b = base.get(kind, 0)
        if n > safety.max_removals:
            reasons.append(f"{n} {kind} exceeds the limit of {safety.max_removals}")
        elif b >= safety.min_base and 100.0 * n / b > safety.max_removal_percent:
            reasons.append(
                f"{n} {kind} is {100.0 * n / b:.0f}% of {b}, "
                f"over the limit of {safety.max_removal_percent:g}%"
            )
    if reasons:
        raise TargetSafetyStop(reasons, plan)
    return plan
