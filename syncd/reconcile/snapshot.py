"""What an IdP says about one directory, as plain immutable values.

A `Snapshot` is the only thing a pull connector hands to the rest of syncd. Invariants:

- Every id is the IdP's immutable object id (Graph object id, Okta id, Google id), never an
  email or a name. Users and groups are matched on it.
- `SnapshotGroup.member_ids` is the group's *transitive* set of user ids: nested groups are
  already expanded, non-user members (service principals, devices, customers) dropped.
- `mode == "full"`: `users` and `groups` hold everything in scope; anything in the store that
  is absent has left scope.
- `mode == "delta"`: `users` and `groups` hold only what changed since the cursor, each group
  with its complete transitive member set; `removed_users` / `removed_groups` list what left.
- `complete is False` means some read failed after its retries; such a snapshot may add and
  update, but must never be used to remove, deactivate or delete anything.
- `notes` say how the read went where that is worth an operator's attention but does not make
  the snapshot incomplete (e.g. an incremental read that fell back to a full one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class SnapshotUser:
    """One user as the IdP reports it."""

    external_id: str
    user_name: str
    active: bool = True
    email: str | None = None
    display_name: str | None = None
    given_name: str | None = None
    family_name: str | None = None


@dataclass(frozen=True, slots=True)
class SnapshotGroup:
    """One group with its transitive user members (ids of `SnapshotUser`)."""

    external_id: str
    display_name: str
    member_ids: frozenset[str] = frozenset()
    description: str | None = None


@dataclass(slots=True)
class FetchStats:
    """Counters of one fetch: HTTP calls sent (retries included), throttled answers, pages read."""

    api_calls: int = 0
    throttles: int = 0
    pages: int = 0

    def merge(self, other: FetchStats) -> None:
        self.api_calls += other.api_calls
        self.throttles += other.throttles
        self.pages += other.pages


@dataclass(slots=True, repr=False)
class Snapshot:
    """Users and groups of one directory, as read from its IdP (see the module invariants)."""

    directory: str
    mode: Literal["full", "delta"] = "full"
    users: dict[str, SnapshotUser] = field(default_factory=dict)
    groups: dict[str, SnapshotGroup] = field(default_factory=dict)
    removed_users: set[str] = field(default_factory=set)
    removed_groups: set[str] = field(default_factory=set)
    complete: bool = True
    problems: list[str] = field(default_factory=list)
    cursor: str | None = None
    stats: FetchStats = field(default_factory=FetchStats)
    notes: list[str] = field(default_factory=list)

    def __repr__(self) -> str:  # short: asyncio and loggers repr results, and these can be huge
        return (
            f"Snapshot({self.directory!r}, {self.mode}, users={len(self.users)}, "
            f"groups={len(self.groups)}, complete={self.complete})"
        )

    def mark_incomplete(self, problem: str) -> None:
        """Record a failed read; the snapshot can no longer justify removals."""
        self.complete = False
        self.problems.append(problem)


@dataclass(frozen=True, slots=True)
class UserGroups:
    """One user's current transitive groups, for the login path.

    `user` is None when the IdP does not know the user (deleted or never existed).

    Invariant (the login contract): `groups` are groups the user is a member of, with the same
    meaning of membership as the connector's snapshots (so a login and the next pull agree).
    The absence of a group from `groups` means "not a member" only where `reports(group)` is
    true: a per-user lookup may be blind to some memberships (Google's ``groups.list(userKey)``
    never returns a group that has the whole customer as a member). An on-login sync removes
    the user only from teams whose group the lookup `reports`.

    - `unseen`: ids of groups the lookup cannot report on;
    - `complete` False: the lookup could not even tell which groups it cannot see, so it
      reports no absence at all (adds only);
    - `notes`: why, for the login's answer.
    """

    directory: str
    user: SnapshotUser | None
    groups: tuple[SnapshotGroup, ...] = ()
    stats: FetchStats = field(default_factory=FetchStats)
    unseen: frozenset[str] = frozenset()
    complete: bool = True
    notes: tuple[str, ...] = ()

    def reports(self, group_external_id: str) -> bool:
        """Whether this lookup is authoritative for the group: absent from `groups` means the
        user is not a member of it."""
        return self.complete and group_external_id not in self.unseen
