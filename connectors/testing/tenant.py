"""A seeded, mutable fake tenant shared by the fake Graph, Okta and Google servers.

Ids here are neutral (uuid strings); each fake server formats them the way its vendor does.
Every mutation advances `clock` and is recorded in `changes`, so fakes can answer incremental
(delta) reads: objects changed after a given clock value, and membership edges added or removed.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Literal

FIRST = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Ken", "Dennis", "Radia", "Linus", "Margaret",
         "Donald", "Frances", "John", "Leslie", "Niklaus", "Tim", "Vint", "Whitfield", "Sophie", "Yukihiro"]
LAST = ["Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Thompson", "Ritchie", "Perlman",
        "Torvalds", "Hamilton", "Knuth", "Allen", "McCarthy", "Lamport", "Wirth", "Berners-Lee", "Cerf",
        "Diffie", "Wilson", "Matsumoto"]


@dataclass(slots=True)
class FakeUser:
    id: str
    user_name: str  # also the primary email
    given_name: str
    family_name: str
    active: bool = True
    changed_at: int = 0

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}"


@dataclass(slots=True)
class FakeGroup:
    id: str
    name: str
    description: str = ""
    user_ids: set[str] = field(default_factory=set)  # direct user members
    group_ids: set[str] = field(default_factory=set)  # direct nested group members
    changed_at: int = 0


@dataclass(frozen=True, slots=True)
class Change:
    """One recorded mutation at `clock`."""

    clock: int
    kind: Literal["user", "group", "member"]
    id: str  # user id, group id, or group id for member edges
    member_id: str | None = None
    member_kind: Literal["user", "group"] | None = None
    removed: bool = False


@dataclass
class Tenant:
    domain: str = "contoso.example"
    users: dict[str, FakeUser] = field(default_factory=dict)
    groups: dict[str, FakeGroup] = field(default_factory=dict)
    deleted_users: dict[str, int] = field(default_factory=dict)  # id -> clock of deletion
    deleted_groups: dict[str, int] = field(default_factory=dict)
    clock: int = 1
    changes: list[Change] = field(default_factory=list)

    # -- reads -------------------------------------------------------------------------------

    def transitive_user_ids(self, group_id: str) -> set[str]:
        """Users reachable from `group_id` through nested groups; cycle-safe."""
        out: set[str] = set()
        seen = {group_id}
        stack = [group_id]
        while stack:
            g = self.groups.get(stack.pop())
            if g is None:
                continue
            out |= g.user_ids
            for child in g.group_ids:
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return out

    def parent_group_ids(self, member_id: str) -> set[str]:
        """Groups that directly contain `member_id` (a user or a group)."""
        return {g.id for g in self.groups.values() if member_id in g.user_ids or member_id in g.group_ids}

    def transitive_group_ids(self, user_id: str) -> set[str]:
        """Groups the user belongs to directly or through nesting; cycle-safe."""
        out: set[str] = set()
        frontier = self.parent_group_ids(user_id)
        while frontier:
            gid = frontier.pop()
            if gid in out:
                continue
            out.add(gid)
            frontier |= self.parent_group_ids(gid) - out
        return out

    def find_user(self, key: str) -> FakeUser | None:
        """By id or (case-insensitively) by user name."""
        if key in self.users:
            return self.users[key]
        k = key.lower()
        return next((u for u in self.users.values() if u.user_name.lower() == k), None)

    @property
    def membership_count(self) -> int:
        return sum(len(g.user_ids) for g in self.groups.values())

    def changes_since(self, clock: int) -> list[Change]:
        return [c for c in self.changes if c.clock > clock]

    # -- mutations (each advances the clock and is recorded) ----------------------------------

    def _tick(self) -> int:
        self.clock += 1
        return self.clock

    def add_user(self, user_name: str, given_name: str = "New", family_name: str = "User",
                 *, active: bool = True, id: str | None = None) -> FakeUser:
        u = FakeUser(id or str(uuid.uuid4()), user_name, given_name, family_name, active, self._tick())
        self.users[u.id] = u
        self.changes.append(Change(u.changed_at, "user", u.id))
        return u

    def update_user(self, user_id: str, **fields: object) -> FakeUser:
        u = self.users[user_id]
        for k, v in fields.items():
            setattr(u, k, v)
        u.changed_at = self._tick()
        self.changes.append(Change(u.changed_at, "user", u.id))
        return u

    def delete_user(self, user_id: str) -> None:
        self.users.pop(user_id)
        for g in self.groups.values():
            if user_id in g.user_ids:
                self.remove_member(g.id, user_id)
        c = self._tick()
        self.deleted_users[user_id] = c
        self.changes.append(Change(c, "user", user_id, removed=True))

    def add_group(self, name: str, *, description: str = "", id: str | None = None) -> FakeGroup:
        g = FakeGroup(id or str(uuid.uuid4()), name, description, changed_at=self._tick())
        self.groups[g.id] = g
        self.changes.append(Change(g.changed_at, "group", g.id))
        return g

    def rename_group(self, group_id: str, name: str) -> None:
        g = self.groups[group_id]
        g.name = name
        g.changed_at = self._tick()
        self.changes.append(Change(g.changed_at, "group", g.id))

    def delete_group(self, group_id: str) -> None:
        self.groups.pop(group_id)
        for g in self.groups.values():
            if group_id in g.group_ids:
                self.remove_member(g.id, group_id)
        c = self._tick()
        self.deleted_groups[group_id] = c
        self.changes.append(Change(c, "group", group_id, removed=True))

    def add_member(self, group_id: str, member_id: str) -> None:
        g = self.groups[group_id]
        kind: Literal["user", "group"] = "group" if member_id in self.groups else "user"
        (g.group_ids if kind == "group" else g.user_ids).add(member_id)
        g.changed_at = self._tick()
        self.changes.append(Change(g.changed_at, "member", group_id, member_id, kind))

    def remove_member(self, group_id: str, member_id: str) -> None:
        g = self.groups[group_id]
        kind: Literal["user", "group"] = "group" if member_id in g.group_ids else "user"
        g.group_ids.discard(member_id)
        g.user_ids.discard(member_id)
        g.changed_at = self._tick()
        self.changes.append(Change(g.changed_at, "member", group_id, member_id, kind, removed=True))


def generate(
    *,
    seed: int = 1,
    users: int = 200,
    groups: int = 20,
    members_per_group: int = 10,
    nesting_depth: int = 2,
    disabled_fraction: float = 0.05,
    domain: str = "contoso.example",
) -> Tenant:
    """A deterministic tenant of the given size.

    `nesting_depth` > 0 nests about one group in ten inside another group, in chains up to that
    depth (no cycles; tests add cycles by hand). Generation is O(users + memberships).
    """
    rng = random.Random(seed)
    t = Tenant(domain=domain)
    uid = uuid.UUID(int=rng.getrandbits(128), version=4)
    user_ids: list[str] = []
    for i in range(users):
        uid = uuid.UUID(int=rng.getrandbits(128), version=4)
        given, family = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
        u = FakeUser(str(uid), f"{given.lower()}.{family.lower()}{i}@{domain}", given, family,
                     active=rng.random() >= disabled_fraction, changed_at=1)
        t.users[u.id] = u
        user_ids.append(u.id)
    group_ids: list[str] = []
    for i in range(groups):
        gid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        g = FakeGroup(gid, f"team-{i:05d}", f"Generated group {i}", changed_at=1)
        if user_ids:
            g.user_ids = set(rng.sample(user_ids, min(members_per_group, len(user_ids))))
        t.groups[gid] = g
        group_ids.append(gid)
    if nesting_depth > 0 and len(group_ids) > 1:
        # chains g[k] ⊃ g[k+1] ⊃ ... of length nesting_depth, starting at every tenth group
        for start in range(0, len(group_ids) - nesting_depth, 10):
            for d in range(nesting_depth):
                t.groups[group_ids[start + d]].group_ids.add(group_ids[start + d + 1])
    return t
