"""Normalisation stage: cut a snapshot down to the configured scope (pure).

Groups are kept when they match an include rule (all, when there are none) and no exclude
rule; a rule is a group id, a shell glob on the name (`eng-*`) or a regex (`re:^eng-`).
Users: `all` keeps every user the IdP reported; `members` keeps only users in a kept group.
In a full snapshot, member ids that name no kept user are dropped.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field, replace
from typing import Literal

from syncd.reconcile.snapshot import Snapshot, SnapshotGroup


@dataclass(frozen=True, slots=True)
class Scope:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    users: Literal["all", "members"] = "all"
    _compiled: dict[str, re.Pattern[str]] = field(default_factory=dict, compare=False, repr=False)

    def _match(self, rule: str, g: SnapshotGroup) -> bool:
        if rule == g.external_id:
            return True
        if rule.startswith("re:"):
            pat = self._compiled.get(rule) or self._compiled.setdefault(rule, re.compile(rule[3:]))
            return pat.search(g.display_name) is not None
        return fnmatch.fnmatchcase(g.display_name.casefold(), rule.casefold())

    def keeps(self, g: SnapshotGroup) -> bool:
        if self.include and not any(self._match(r, g) for r in self.include):
            return False
        return not any(self._match(r, g) for r in self.exclude)


def apply_scope(snapshot: Snapshot, scope: Scope) -> Snapshot:
    """A new snapshot holding only what is in scope; out-of-scope groups count as removed."""
    groups = {k: g for k, g in snapshot.groups.items() if scope.keeps(g)}
    removed_groups = set(snapshot.removed_groups)
    if snapshot.mode == "delta":
        removed_groups |= snapshot.groups.keys() - groups.keys()
    users = snapshot.users
    if scope.users == "members" and snapshot.mode == "full":
        wanted = set().union(*(g.member_ids for g in groups.values())) if groups else set()
        users = {k: u for k, u in users.items() if k in wanted}
    if snapshot.mode == "full":  # a delta names only changed users; members may be unchanged ones
        kept = set(users)  # a set: frozenset's own subset and intersection paths (dict keys are slower)
        groups = {
            k: g if g.member_ids <= kept else replace(g, member_ids=frozenset(g.member_ids & kept))
            for k, g in groups.items()
        }
    return replace(snapshot, users=dict(users), groups=groups, removed_groups=removed_groups)
