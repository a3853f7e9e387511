"""RunOptions from a directory's validated settings (scope, policies, safety thresholds)."""

from __future__ import annotations

from typing import Any

from syncd.reconcile.run import RunOptions
from syncd.reconcile.safety import Thresholds
from syncd.reconcile.scope import Scope


def run_options(settings: Any, **overrides: Any) -> RunOptions:
    """Options for a pull directory's settings; `overrides` (trigger, dry_run, ...) win."""
    safety = settings.safety
    kw: dict[str, Any] = {
        "thresholds": Thresholds(safety.max_removals, safety.max_removal_percent, safety.min_base),
        "allow_deletes": safety.allow_deletes,
        "scope": Scope(
            tuple(settings.scope.groups), tuple(settings.scope.exclude_groups), settings.scope.users
        ),
        "users_left": settings.on_user_left,
        "teams_left": settings.on_group_left,
    }
    if overrides.get("allow_deletes") is False:
        overrides.pop("allow_deletes")  # the flag can allow, never forbid what config allows
    return RunOptions(**{**kw, **overrides})
