"""Auth0-shaped views of a fake `Tenant`: ids, JSON bodies, membership lists, checkpoints.

Used only by `connectors.testing.auth0`. Invariants:

- user ids are `auth0|` + 24 hex characters, role ids `rol_` + 16 base62 characters and
  organization ids `org_` + 16, each derived from a hash of the tenant id (stable, deleted ids
  included). Every tenant group is served both as a role and as an organization; nested group
  edges are ignored (Auth0 has no nesting).
- Users carry `blocked: true` only when inactive; the field is absent otherwise, as Auth0 omits
  it on users never blocked.
- An index is immutable; the fake builds a new one when `tenant.clock` moves. Lists are sorted
  by id, which is also the order checkpoint cursors (`next`: the base64 of the last id sent)
  follow.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import string
from dataclasses import dataclass
from typing import Any

import orjson

from connectors.testing.tenant import FakeGroup, FakeUser, Tenant

_B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
CREATED = "2024-01-15T09:30:00.000Z"


def _h(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=16).digest(), "big")


def user_id(tenant_id: str) -> str:
    return "auth0|" + format(_h("user:" + tenant_id), "032x")[:24]


def _b62(prefix: str, tenant_id: str) -> str:
    n, out = _h(prefix + tenant_id), []
    for _ in range(16):
        n, r = divmod(n, 62)
        out.append(_B62[r])
    return prefix + "".join(out)


def role_id(tenant_id: str) -> str:
    return _b62("rol_", tenant_id)


def org_id(tenant_id: str) -> str:
    return _b62("org_", tenant_id)


def user_obj(u: FakeUser) -> dict[str, Any]:
    uid = user_id(u.id)
    obj: dict[str, Any] = {
        "user_id": uid,
        "email": u.user_name,
        "email_verified": True,
        "name": u.display_name,
        "given_name": u.given_name,
        "family_name": u.family_name,
        "nickname": u.user_name.split("@")[0],
        "picture": "https://s.gravatar.com/avatar/x.png",
        "identities": [
            {
                "connection": "Username-Password-Authentication",
                "provider": "auth0",
                "user_id": uid.split("|", 1)[1],
                "isSocial": False,
            }
        ],
        "created_at": CREATED,
        "updated_at": CREATED,
    }
    if not u.active:
        obj["blocked"] = True
    return obj


def role_obj(g: FakeGroup) -> dict[str, Any]:
    return {"id": role_id(g.id), "name": g.name, "description": g.description or g.name}


def org_obj(g: FakeGroup) -> dict[str, Any]:
    return {
        "id": org_id(g.id),
        "name": g.name.lower(),
        "display_name": g.name,
        "branding": {"colors": {"primary": "#0059d6", "page_background": "#000000"}},
    }


def encode_cursor(last: str) -> str:
    return base64.urlsafe_b64encode(last.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()


def after(ids: list[str], last: str | None, take: int) -> tuple[list[str], str | None]:
    """The next `take` ids after `last` in sorted `ids`; and the cursor, None at the end."""
    start = 0 if last is None else bisect.bisect_right(ids, last)
    chunk = ids[start : start + take]
    more = start + take < len(ids)
    return chunk, (encode_cursor(chunk[-1]) if more and chunk else None)


@dataclass
class Auth0Index:
    clock: int
    users: dict[str, dict[str, Any]]  # user_id -> object
    user_body: dict[str, bytes]
    member_body: dict[str, bytes]  # the short form in member lists
    user_ids: list[str]
    by_email: dict[str, list[str]]
    roles: dict[str, dict[str, Any]]
    role_ids: list[str]
    role_members: dict[str, list[str]]
    orgs: dict[str, dict[str, Any]]
    org_ids: list[str]
    org_members: dict[str, list[str]]
    user_roles: dict[str, list[str]]
    user_orgs: dict[str, list[str]]

    @classmethod
    def build(cls, t: Tenant) -> Auth0Index:
        users = {user_id(u.id): user_obj(u) for u in t.users.values()}
        user_body = {k: orjson.dumps(v) for k, v in users.items()}
        member_body = {
            k: orjson.dumps({"user_id": k, "email": v["email"], "picture": v["picture"], "name": v["name"]})
            for k, v in users.items()
        }
        by_email: dict[str, list[str]] = {}
        for k, v in users.items():
            by_email.setdefault(v["email"], []).append(k)
        roles, orgs, role_members, org_members = {}, {}, {}, {}
        user_roles: dict[str, list[str]] = {}
        user_orgs: dict[str, list[str]] = {}
        for g in t.groups.values():
            r, o = role_obj(g), org_obj(g)
            roles[r["id"]], orgs[o["id"]] = r, o
            members = sorted(user_id(u) for u in g.user_ids if u in t.users)
            role_members[r["id"]], org_members[o["id"]] = members, members
            for m in members:
                user_roles.setdefault(m, []).append(r["id"])
                user_orgs.setdefault(m, []).append(o["id"])
        return cls(
            t.clock,
            users,
            user_body,
            member_body,
            sorted(users),
            by_email,
            roles,
            sorted(roles),
            role_members,
            orgs,
            sorted(orgs),
            org_members,
            {k: sorted(v) for k, v in user_roles.items()},
            {k: sorted(v) for k, v in user_orgs.items()},
        )

    def export_lines(self, fields: list[str]) -> bytes:
        """An NDJSON users export with only `fields` (absent values are left out)."""
        out = []
        for uid in self.user_ids:
            u = self.users[uid]
            out.append(orjson.dumps({f: u[f] for f in fields if f in u}))
        return b"\n".join(out) + b"\n"
