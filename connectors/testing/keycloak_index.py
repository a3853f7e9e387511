"""The fake Keycloak realm's view of a `Tenant`: users, the group forest, and their JSON bodies.

Keycloak groups form a forest: a group has at most one parent. A tenant group nested in
several groups is placed under the first of them by name (tests of nesting use trees, as the
generator makes); a nesting that would close a cycle is dropped. Users are listed by username,
groups by name, as Keycloak orders them.
"""

from __future__ import annotations

from typing import Any

import orjson

from connectors.testing.tenant import FakeGroup, FakeUser, Tenant

CREATED_MS = 1_700_000_000_000


def user_json(u: FakeUser, *, brief: bool) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": u.id,
        "username": u.user_name.lower(),
        "firstName": u.given_name,
        "lastName": u.family_name,
        "email": u.user_name.lower(),
        "emailVerified": True,
        "enabled": u.active,
        "createdTimestamp": CREATED_MS + u.changed_at,
    }
    if not brief:
        obj.update(
            {
                "totp": False,
                "disableableCredentialTypes": [],
                "requiredActions": [],
                "notBefore": 0,
                "attributes": {},
                "access": {
                    "manageGroupMembership": True,
                    "view": True,
                    "mapRoles": True,
                    "impersonate": False,
                    "manage": True,
                },
            }
        )
    return obj


class KeycloakIndex:
    """A snapshot of the tenant as Keycloak would serve it; rebuilt when the tenant changes."""

    def __init__(self, tenant: Tenant, *, parent_ids: bool = True, legacy: bool = False) -> None:
        self.clock = tenant.clock
        self.parent_ids = parent_ids and not legacy
        self.legacy = legacy
        self.tenant = tenant
        self.user_ids = sorted(tenant.users, key=lambda i: tenant.users[i].user_name.lower())
        self.by_username = {tenant.users[i].user_name.lower(): i for i in self.user_ids}
        self.user_brief = {i: orjson.dumps(user_json(tenant.users[i], brief=True)) for i in self.user_ids}
        self.user_full = {i: orjson.dumps(user_json(tenant.users[i], brief=False)) for i in self.user_ids}
        by_name = sorted(tenant.groups.values(), key=lambda g: (g.name, g.id))
        self.parent: dict[str, str] = {}
        for g in by_name:
            for child in sorted(
                g.group_ids, key=lambda c: (tenant.groups[c].name, c) if c in tenant.groups else ("", c)
            ):
                if child in tenant.groups and child not in self.parent and not self._is_ancestor(child, g.id):
                    self.parent[child] = g.id
        self.children: dict[str, list[str]] = {}
        for g in by_name:
            if g.id in self.parent:
                self.children.setdefault(self.parent[g.id], []).append(g.id)
        self.top = [g.id for g in by_name if g.id not in self.parent]
        self.path: dict[str, str] = {}
        for g in by_name:
            self.path[g.id] = self._path(g.id)
        self.by_path = {p: gid for gid, p in self.path.items()}
        rank = {uid: n for n, uid in enumerate(self.user_ids)}
        self.members = {
            g.id: sorted((u for u in g.user_ids if u in tenant.users), key=rank.get) for g in by_name
        }
        self.groups_of: dict[str, list[str]] = {}
        for g in by_name:
            for u in self.members[g.id]:
                self.groups_of.setdefault(u, []).append(g.id)

    def _is_ancestor(self, candidate: str, gid: str) -> bool:
        seen: set[str] = set()
        while gid not in seen:
            if gid == candidate:
                return True
            seen.add(gid)
            if gid not in self.parent:
                return False
            gid = self.parent[gid]
        return True

    def _path(self, gid: str) -> str:
        names = []
        while True:
            names.append(self.tenant.groups[gid].name.replace("/", "~/"))
            if gid not in self.parent:
                break
            gid = self.parent[gid]
        return "/" + "/".join(reversed(names))

    def group_json(self, gid: str, *, brief: bool) -> bytes:
        return orjson.dumps(self.group_obj(gid, brief=brief))

    def group_obj(self, gid: str, *, brief: bool) -> dict[str, Any]:
        """Keycloak 23+: `subGroupCount`, `subGroups` always empty. `legacy` (before 23): no
        count, no `parentId`, and `subGroups` filled with the whole subtree."""
        g: FakeGroup = self.tenant.groups[gid]
        obj: dict[str, Any] = {"id": gid, "name": g.name, "path": self.path[gid]}
        if gid in self.parent and self.parent_ids:
            obj["parentId"] = self.parent[gid]
        if self.legacy:
            obj["subGroups"] = [self.group_obj(c, brief=brief) for c in self.children.get(gid, ())]
        else:
            obj["subGroupCount"] = len(self.children.get(gid, ()))
            obj["subGroups"] = []  # never filled since Keycloak 23
        if g.description:
            obj["description"] = g.description
        if not brief:
            obj.update(
                {
                    "attributes": {},
                    "realmRoles": [],
                    "clientRoles": {},
                    "access": {
                        "view": True,
                        "viewMembers": True,
                        "manageMembers": False,
                        "manage": False,
                        "manageMembership": False,
                    },
                }
            )
        return obj
