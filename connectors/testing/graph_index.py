"""The fake Graph server's view of a `Tenant`: Graph JSON objects, indexes and delta entries.

Everything here is derived from the tenant and rebuilt lazily when `tenant.clock` moves, so a
request costs O(page), not O(tenant). Tenant ids are used unchanged as Graph object ids.

Synthetic objects that the tenant does not model, so tests can prove the connector drops them:

- every group whose id passes `has_extra_members` also has one servicePrincipal and one
  device as direct members (they show up in `members`, `transitiveMembers` and `members@delta`);
- every user whose id passes `has_directory_role` is a member of the directoryRole
  `ROLE_ID` (it shows up in `memberOf` / `transitiveMemberOf`).
"""

from __future__ import annotations

import uuid
from typing import Any

from connectors.testing.tenant import FakeGroup, FakeUser, Tenant

USER = "#microsoft.graph.user"
GROUP = "#microsoft.graph.group"
SP = "#microsoft.graph.servicePrincipal"
DEVICE = "#microsoft.graph.device"
ROLE = "#microsoft.graph.directoryRole"

ROLE_ID = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"
_NS = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")

#: members@delta entries per group object on one delta page; bigger groups repeat on next pages
DELTA_MEMBERS_PER_ENTRY = 50


def _h(oid: str) -> int:
    return int(oid.replace("-", "")[-4:], 16) if oid else 0


def is_security_enabled(group_id: str) -> bool:
    """About three groups in four are security groups; the rest are Microsoft 365 groups."""
    return _h(group_id) % 4 != 0


def has_extra_members(group_id: str) -> bool:
    """Groups that also hold a servicePrincipal and a device member (about one in five)."""
    return _h(group_id) % 5 == 0


def has_directory_role(user_id: str) -> bool:
    """Users that also hold the Global Reader directory role (about one in seven)."""
    return _h(user_id) % 7 == 0


def default_app_assigned(group_id: str) -> bool:
    """Groups assigned to the fake app's service principal when the fake is not told otherwise."""
    return _h(group_id) % 3 == 0


def user_json(u: FakeUser) -> dict[str, Any]:
    return {
        "@odata.type": USER, "id": u.id, "businessPhones": [], "displayName": u.display_name,
        "givenName": u.given_name, "jobTitle": None, "mail": u.user_name, "mobilePhone": None,
        "officeLocation": None, "preferredLanguage": None, "surname": u.family_name,
        "userPrincipalName": u.user_name, "accountEnabled": u.active,
    }


def group_json(g: FakeGroup) -> dict[str, Any]:
    sec = is_security_enabled(g.id)
    return {
        "@odata.type": GROUP, "id": g.id, "displayName": g.name, "description": g.description or None,
        "groupTypes": [] if sec else ["Unified"], "mail": None if sec else f"{g.name}@example.com",
        "mailEnabled": not sec, "mailNickname": g.name, "securityEnabled": sec,
        "visibility": None if sec else "Private",
    }


def extra_members(group_id: str) -> list[dict[str, Any]]:
    if not has_extra_members(group_id):
        return []
    sp = str(uuid.uuid5(_NS, "sp:" + group_id))
    dev = str(uuid.uuid5(_NS, "device:" + group_id))
    return [
        {"@odata.type": SP, "id": sp, "displayName": f"app-{sp[:8]}", "appId": sp},
        {"@odata.type": DEVICE, "id": dev, "displayName": f"laptop-{dev[:8]}", "deviceId": dev},
    ]


ROLE_JSON = {"@odata.type": ROLE, "id": ROLE_ID, "displayName": "Global Reader",
             "description": "Can read everything that a Global Administrator can.",
             "roleTemplateId": "f2ef992c-3afb-46b9-b7cf-a126ee74c451"}

#: Properties Graph returns for users when no $select is given (accountEnabled is not one).
USER_DEFAULT = ("businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
                "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id")


def project(obj: dict[str, Any], select: tuple[str, ...] | None, *, typed: bool) -> dict[str, Any]:
    """`obj` cut down to `select` (or the type's defaults); `@odata.type` kept when `typed`."""
    if select is None:
        if obj.get("@odata.type") == USER:
            out = {k: obj[k] for k in USER_DEFAULT}
        else:
            out = {k: v for k, v in obj.items() if k != "@odata.type"}
    else:
        out = {k: obj[k] for k in select if k in obj}
        out["id"] = obj["id"]
    if typed:
        out = {"@odata.type": obj["@odata.type"], **out}
    return out


class GraphIndex:
    """Lazily built views of one tenant state (one `clock` value)."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.clock = tenant.clock
        self.users: dict[str, dict[str, Any]] = {u.id: user_json(u) for u in tenant.users.values()}
        self.user_list = list(self.users.values())
        self.groups: dict[str, dict[str, Any]] = {g.id: group_json(g) for g in tenant.groups.values()}
        self.group_list = list(self.groups.values())
        self.upn = {u.user_name.lower(): u.id for u in tenant.users.values()}
        self._parents: dict[str, list[str]] | None = None
        self._transitive: dict[str, list[dict[str, Any]]] = {}
        self.cache: dict[Any, Any] = {}  # per-state memo for projected lists and delta entries

    def cache_list(self, key: Any, build: Any) -> list[dict[str, Any]]:
        """`build()` memoised under `key` for this tenant state."""
        hit = self.cache.get(key)
        if hit is None:
            hit = self.cache[key] = build()
        return hit

    # -- membership ---------------------------------------------------------------------------

    def direct_members(self, group_id: str) -> list[dict[str, Any]]:
        g = self.tenant.groups[group_id]
        out = [self.users[u] for u in sorted(g.user_ids) if u in self.users]
        out += [self.groups[c] for c in sorted(g.group_ids) if c in self.groups]
        return out + extra_members(group_id)

    def transitive_members(self, group_id: str) -> list[dict[str, Any]]:
        """Users, nested groups, service principals and devices reachable from the group."""
        hit = self._transitive.get(group_id)
        if hit is not None:
            return hit
        seen_objs: set[str] = set()
        out: list[dict[str, Any]] = []
        seen_groups = {group_id}
        stack = [group_id]
        while stack:
            gid = stack.pop()
            for obj in self.direct_members(gid):
                oid = obj["id"]
                if oid in seen_objs or oid == group_id:
                    continue
                seen_objs.add(oid)
                out.append(obj)
                if obj["@odata.type"] == GROUP and oid not in seen_groups:
                    seen_groups.add(oid)
                    stack.append(oid)
        self._transitive[group_id] = out
        return out

    def parents(self) -> dict[str, list[str]]:
        """member id (user or group) -> ids of groups that contain it directly."""
        if self._parents is None:
            p: dict[str, list[str]] = {}
            for g in self.tenant.groups.values():
                for m in g.user_ids:
                    p.setdefault(m, []).append(g.id)
                for m in g.group_ids:
                    p.setdefault(m, []).append(g.id)
            self._parents = p
        return self._parents

    def member_of(self, object_id: str, *, transitive: bool) -> list[dict[str, Any]]:
        """Groups (and, for users, the directory role) the object belongs to."""
        parents = self.parents()
        found: list[str] = []
        seen: set[str] = set()
        frontier = list(parents.get(object_id, ()))
        while frontier:
            gid = frontier.pop()
            if gid in seen or gid == object_id:
                continue
            seen.add(gid)
            found.append(gid)
            if transitive:
                frontier.extend(parents.get(gid, ()))
        out = [self.groups[g] for g in sorted(found) if g in self.groups]
        if object_id in self.users and has_directory_role(object_id):
            out.append(ROLE_JSON)
        return out

    # -- delta --------------------------------------------------------------------------------

    def user_delta(self, since: int | None) -> list[dict[str, Any]]:
        """Delta entries for users: everything when `since` is None, else changes after it."""
        if since is None:
            return self.user_list
        out = [o for o in self.user_list if self.tenant.users[o["id"]].changed_at > since]
        out += [{"id": uid, "@removed": {"reason": "changed"}}
                for uid, c in self.tenant.deleted_users.items() if c > since]
        return out

    def group_delta(self, since: int | None, select: tuple[str, ...] | None) -> list[dict[str, Any]]:
        """Delta entries for groups, members@delta split over entries of bounded size.

        An entry of a group whose attributes did not change holds only `id` and members@delta,
        as Graph does for membership-only changes.
        """
        key = ("gdelta", since, select)
        if key in self.cache:
            return self.cache[key]
        want_members = select is None or "members" in select
        sel = None if select is None else tuple(s for s in select if s != "members")
        entries: list[dict[str, Any]] = []
        if since is None:
            for g in self.group_list:
                refs = [{"@odata.type": o["@odata.type"], "id": o["id"]}
                        for o in self.direct_members(g["id"])] if want_members else []
                entries += _split(project(g, sel, typed=False), refs, want_members)
        else:
            attrs: set[str] = set()
            edges: dict[str, dict[str, str]] = {}
            for c in self.tenant.changes_since(since):
                if c.kind == "group" and not c.removed:
                    attrs.add(c.id)
                elif c.kind == "member" and c.member_id:
                    edges.setdefault(c.id, {})[c.member_id] = c.member_kind or "user"
            for gid in [*attrs, *(e for e in edges if e not in attrs)]:
                g = self.tenant.groups.get(gid)
                if g is None:
                    continue
                head = project(self.groups[gid], sel, typed=False) if gid in attrs else {"id": gid}
                refs = []
                for mid, kind in sorted(edges.get(gid, {}).items()):
                    ref = {"@odata.type": GROUP if kind == "group" else USER, "id": mid}
                    if mid not in g.user_ids and mid not in g.group_ids:
                        ref["@removed"] = {"reason": "deleted"}
                    refs.append(ref)
                entries += _split(head, refs, want_members)
            entries += [{"id": gid, "@removed": {"reason": "changed"}}
                        for gid, c in self.tenant.deleted_groups.items() if c > since]
        self.cache[key] = entries
        return entries


def _split(head: dict[str, Any], refs: list[dict[str, Any]], want: bool) -> list[dict[str, Any]]:
    if not want:
        return [head]
    out = [{**head, "members@delta": refs[:DELTA_MEMBERS_PER_ENTRY]}]
    for i in range(DELTA_MEMBERS_PER_ENTRY, len(refs), DELTA_MEMBERS_PER_ENTRY):
        out.append({"id": head["id"], "members@delta": refs[i:i + DELTA_MEMBERS_PER_ENTRY]})
    return out
