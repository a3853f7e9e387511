"""The `Plan`: typed, immutable changes that turn the store into what the snapshot says.

Users and teams are named by the IdP's `external_id`; `store_id` is the local id when the
row exists. A plan is plain data: it can be shown (`syncd plan`), kept for review when a
safety check stops a run, and applied later.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from syncd.reconcile.snapshot import SnapshotUser

#: kinds of change that take something away; these are what safety thresholds count
REMOVAL_KINDS = ("deactivate_user", "archive_team", "remove_members")


@dataclass(frozen=True, slots=True)
class UserChange:
    kind: str  # create_user | update_user | deactivate_user | reactivate_user
    external_id: str
    store_id: str | None = None
    user: SnapshotUser | None = None
    fields: tuple[str, ...] = ()  # for update_user: which attributes differ


@dataclass(frozen=True, slots=True)
class TeamChange:
    kind: str  # create_team | rename_team | archive_team | restore_team
    external_id: str
    display_name: str
    store_id: str | None = None


@dataclass(frozen=True, slots=True)
class MemberChange:
    kind: str  # add_members | remove_members
    team_external_id: str
    user_external_ids: tuple[str, ...]
    team_store_id: str | None = None


@dataclass(slots=True)
class Plan:
    directory: str
    complete: bool = True
    users: list[UserChange] = field(default_factory=list)
    teams: list[TeamChange] = field(default_factory=list)
    members: list[MemberChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Changes per kind; member changes count memberships, not teams."""
        c: Counter[str] = Counter()
        for u in self.users:
            c[u.kind] += 1
        for t in self.teams:
            c[t.kind] += 1
        for m in self.members:
            c[m.kind] += len(m.user_external_ids)
        return dict(sorted(c.items()))

    @property
    def empty(self) -> bool:
        return not (self.users or self.teams or self.members)

    def removals(self) -> dict[str, int]:
        counts = self.counts()
        return {k: counts.get(k, 0) for k in REMOVAL_KINDS}

    def without_removals(self) -> Plan:
        """The same plan with every removal dropped (for incomplete snapshots)."""
        return Plan(
            self.directory,
            self.complete,
            [u for u in self.users if u.kind not in REMOVAL_KINDS],
            [t for t in self.teams if t.kind not in REMOVAL_KINDS],
            [m for m in self.members if m.kind not in REMOVAL_KINDS],
            list(self.notes),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "complete": self.complete,
            "counts": self.counts(),
            "notes": self.notes,
            "users": [_user_dict(u) for u in self.users],
            "teams": [asdict(t) for t in self.teams],
            "members": [asdict(m) for m in self.members],
        }


def _user_dict(u: UserChange) -> dict[str, Any]:
    d = {"kind": u.kind, "external_id": u.external_id, "store_id": u.store_id, "fields": list(u.fields)}
    if u.user is not None:
        d["user_name"] = u.user.user_name
    return d
