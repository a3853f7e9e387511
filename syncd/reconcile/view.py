"""What the store holds for one directory, reduced to what the diff compares (plain values)."""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class StoredUser:
    id: str
    external_id: str
    user_name: str
    active: bool
    display_name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class StoredTeam:
    id: str
    external_id: str
    display_name: str
    archived: bool = False


@dataclass(slots=True)
class StoreView:
    """Rows of one directory that carry an external id (the ones a pull may manage).

    `members[team external id]` holds the user external ids of memberships a sync may remove
    (source other than manual); `manual[team external id]` the manual ones. The sets are not
    mutated once the view is built: a team's set may be the snapshot group's own `member_ids`
    (`syncd.reconcile.load`), which then means the two are equal.
    """

    users: dict[str, StoredUser] = field(default_factory=dict)
    teams: dict[str, StoredTeam] = field(default_factory=dict)
    members: dict[str, Set[str]] = field(default_factory=dict)
    manual: dict[str, set[str]] = field(default_factory=dict)
    #: name keys (`fold`) held by rows of the directory that carry no external id (pushed over
    #: SCIM without one, say): a pull never manages them, but its names must avoid theirs
    unmanaged_user_names: set[str] = field(default_factory=set)
    unmanaged_team_names: set[str] = field(default_factory=set)
