"""OneLogin-shaped views of a fake `Tenant`: numeric ids, user state/status codes, JSON bytes.

Used only by `connectors.testing.onelogin`. Invariants:

- Tenant groups are OneLogin roles (roles do not nest: a role's users are the group's direct
  user members). OneLogin groups are separate: `groups_for(tenant)` derives a fixed set, and
  each user has at most one `group_id`, chosen by a hash of its tenant id.
- Ids are 12-digit integers derived from a hash of the tenant id (stable, deleted ones too).
- `OneLoginIndex` is immutable once built; the fake builds a new one when `tenant.clock` moves.
  Lists are sorted by numeric id, the order OneLogin pages them in.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from connectors.testing.tenant import FakeUser, Tenant

ACTIVE_CODES = ((1, 3), (1, 4), (1, 5), (1, 8))  # (state, status) of active, not-plain users
INACTIVE_CODES = ((1, 0), (1, 2), (1, 7), (0, 1), (2, 1), (3, 1))


def _h(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def num_id(kind: str, tenant_id: str) -> int:
    """A stable 12-digit OneLogin id for a tenant user ("user") or group ("role"). Wide enough
    that 100k users almost never collide (p ≈ 0.5 %); the index refuses a tenant where they do."""
    return 100_000_000_000 + _h(f"{kind}:{tenant_id}") % 900_000_000_000


def codes(u: FakeUser) -> tuple[int, int]:
    """(state, status): active tenant users are mostly (1, 1), inactive ones vary."""
    h = _h("codes:" + u.id)
    if u.active:
        return ACTIVE_CODES[h % 4] if h % 10 == 0 else (1, 1)
    return INACTIVE_CODES[h % len(INACTIVE_CODES)]


def group_count(tenant: Tenant) -> int:
    return max(3, len(tenant.users) // 50)


def group_of(u: FakeUser, count: int) -> int | None:
    """The index of the user's one OneLogin group, or None (about one user in eight has none)."""
    h = _h("group:" + u.id)
    return None if h % 8 == 0 else h % count


class OneLoginIndex:
    """Everything the fake serves, built once per tenant clock value."""

    def __init__(self, tenant: Tenant, overrides: dict[str, tuple[int, int]] | None = None) -> None:
        self.clock = tenant.clock
        overrides = overrides or {}
        count = group_count(tenant)
        self.group_ids = [200_000 + i for i in range(count)]
        self.group_body = {
            g: {"id": g, "name": f"ol-group-{i:03d}", "reference": None} for i, g in enumerate(self.group_ids)
        }
        role_of_user: dict[str, list[int]] = {}
        self.roles: dict[int, bytes] = {}
        self.role_members: dict[int, list[int]] = {}
        uid = {t: num_id("user", t) for t in tenant.users}
        if len(set(uid.values())) != len(uid):
            raise ValueError("two tenant users hash to one OneLogin id: use another seed")
        for g in tenant.groups.values():
            rid = num_id("role", g.id)
            self.roles[rid] = orjson.dumps({"id": rid, "name": g.name})
            self.role_members[rid] = sorted(uid[u] for u in g.user_ids if u in uid)
            for u in g.user_ids:
                role_of_user.setdefault(u, []).append(rid)
        self.role_ids = sorted(self.roles)
        self.users: dict[int, dict[str, Any]] = {}
        self.user_list: dict[int, bytes] = {}
        self.member_brief: dict[int, bytes] = {}
        for t, u in tenant.users.items():
            n = uid[t]
            state, status = overrides.get(t) or codes(u)
            gi = group_of(u, count)
            obj = {
                "id": n,
                "username": u.user_name,
                "email": u.user_name,
                "firstname": u.given_name,
                "lastname": u.family_name,
                "state": state,
                "status": status,
                "group_id": None if gi is None else self.group_ids[gi],
                "directory_id": None,
                "external_id": None,
                "distinguished_name": None,
                "created_at": "2024-01-02T03:04:05.678Z",
                "updated_at": "2024-05-06T07:08:09.012Z",
            }
            self.user_list[n] = orjson.dumps(obj)
            self.users[n] = {**obj, "role_ids": sorted(role_of_user.get(t, ()))}
            self.member_brief[n] = orjson.dumps(
                {
                    "id": n,
                    "name": u.display_name,
                    "username": u.user_name,
                    "added_by": {"id": 1, "name": "Account Owner"},
                    "added_at": "2024-01-02T03:04:05Z",
                    "assigned": True,
                }
            )
        self.user_ids = sorted(self.users)

    def search_users(self, attr: str, value: str) -> list[int]:
        """OneLogin's search: exact (case-insensitive), or `*` as a wildcard at either end."""
        v = value.lower()
        head, tail = v.startswith("*"), v.endswith("*")
        core = v.strip("*")

        def hit(s: str) -> bool:
            s = s.lower()
            if head and tail:
                return core in s
            if head:
                return s.endswith(core)
            if tail:
                return s.startswith(core)
            return s == core

        return [n for n in self.user_ids if hit(str(self.users[n].get(attr) or ""))]
