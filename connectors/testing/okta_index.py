"""Okta-shaped views of a fake `Tenant`: ids, timestamps, JSON bytes and filter expressions.

Used only by `connectors.testing.okta`. Invariants:

- Okta ids are "00u" (users) / "00g" (groups) + 17 base62 characters derived from a hash of the
  tenant id, so the same tenant id always maps to the same Okta id (deleted ones included).
- Timestamps: the tenant has a logical `clock`; the index maps clock values to wall-clock
  milliseconds through checkpoints taken whenever a request sees a new `tenant.clock`. The
  generated (initial) state is dated one day before the fake started. A change therefore carries
  a timestamp no earlier than the change itself and no later than the first request after it.
- `OktaIndex` is immutable once built; the fake builds a new one when `tenant.clock` moves.
  Lists are sorted by Okta id, which is also the `after` cursor order.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from connectors.testing.tenant import FakeGroup, FakeUser, Tenant

_B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
EVERYONE = "everyone"  # tenant-side key of Okta's BUILT_IN "Everyone" group

ACTIVE_STATUSES = ("ACTIVE", "PASSWORD_EXPIRED", "LOCKED_OUT", "RECOVERY")
INACTIVE_STATUSES = ("SUSPENDED", "DEPROVISIONED", "STAGED", "PROVISIONED")


def _h(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=16).digest(), "big")


def okta_id(prefix: str, tenant_id: str) -> str:
    """A stable 20-character Okta-style id: `prefix` ("00u"/"00g") + 17 base62 characters."""
    n = _h(tenant_id)
    out = []
    for _ in range(17):
        n, r = divmod(n, 62)
        out.append(_B62[r])
    return prefix + "".join(out)


def user_status(u: FakeUser) -> str:
    """Deterministic Okta status: active tenant users are mostly ACTIVE, inactive ones vary."""
    h = _h("status:" + u.id)
    if u.active:
        return ACTIVE_STATUSES[h % 4] if h % 10 == 0 else "ACTIVE"
    return INACTIVE_STATUSES[h % 4]


def group_type(g: FakeGroup) -> str:
    """About one group in five is an APP_GROUP (imported from an app); the rest OKTA_GROUP."""
    return "APP_GROUP" if _h("type:" + g.id) % 5 == 0 else "OKTA_GROUP"


def iso(ms: int) -> str:
    """Okta's timestamp format: `2024-05-01T12:00:00.000Z` (UTC, milliseconds)."""
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@dataclass
class Timeline:
    """Maps tenant clock values to epoch milliseconds (see the module invariants)."""

    base_ms: int = field(default_factory=lambda: int(time.time() * 1000) - 86_400_000)
    clocks: list[int] = field(default_factory=list)
    times: list[int] = field(default_factory=list)

    def observe(self, clock: int) -> None:
        if self.clocks and clock <= self.clocks[-1]:
            return
        now = int(time.time() * 1000)
        if not self.clocks:
            now = self.base_ms  # the state first seen is the generated one
        elif now <= self.times[-1]:
            now = self.times[-1] + 1
        self.clocks.append(clock)
        self.times.append(now)

    def ms(self, clock: int) -> int:
        i = bisect.bisect_left(self.clocks, clock)
        return self.times[min(i, len(self.times) - 1)] if self.times else self.base_ms


# -- filter / search expressions (Okta's SCIM-like subset) --------------------------------------

_TOKEN = re.compile(r'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|([A-Za-z_][\w.]*))')


class QueryError(ValueError):
    """The expression is not valid Okta filter syntax (the fake answers 400 E0000031)."""


Pred = Callable[[dict[str, Any]], bool]


def parse_query(text: str) -> Pred:
    """Compile `attr op "value"` terms joined by and/or with parentheses into a predicate.

    Operators: eq (case-insensitive), ne, gt, ge, lt, le (string order: ISO timestamps compare
    correctly), sw, co, pr. Unknown syntax raises `QueryError`.
    """
    toks: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise QueryError(text)
        pos = m.end()
        if m.group(1):
            toks.append(("(", "("))
        elif m.group(2):
            toks.append((")", ")"))
        elif m.group(3) is not None:
            toks.append(("str", m.group(3).replace('\\"', '"')))
        else:
            toks.append(("word", m.group(4)))
    i = 0

    def peek() -> tuple[str, str] | None:
        return toks[i] if i < len(toks) else None

    def take() -> tuple[str, str]:
        nonlocal i
        if i >= len(toks):
            raise QueryError(text)
        i += 1
        return toks[i - 1]

    def expr() -> Pred:
        left = term()
        while (t := peek()) and t[0] == "word" and t[1].lower() == "or":
            take()
            a, b = left, term()
            left = lambda o, a=a, b=b: a(o) or b(o)  # noqa: E731
        return left

    def term() -> Pred:
        left = factor()
        while (t := peek()) and t[0] == "word" and t[1].lower() == "and":
            take()
            a, b = left, factor()
            left = lambda o, a=a, b=b: a(o) and b(o)  # noqa: E731
        return left

    def factor() -> Pred:
        kind, val = take()
        if kind == "(":
            inner = expr()
            if take()[0] != ")":
                raise QueryError(text)
            return inner
        if kind != "word":
            raise QueryError(text)
        attr = val
        op = take()[1].lower()
        if op == "pr":
            return lambda o: o.get(attr) not in (None, "")
        k2, lit = take()
        if k2 != "str":
            raise QueryError(text)
        low = lit.lower()
        ops: dict[str, Pred] = {
            "eq": lambda o: str(o.get(attr, "")).lower() == low,
            "ne": lambda o: str(o.get(attr, "")).lower() != low,
            "gt": lambda o: o.get(attr) is not None and str(o[attr]) > lit,
            "ge": lambda o: o.get(attr) is not None and str(o[attr]) >= lit,
            "lt": lambda o: o.get(attr) is not None and str(o[attr]) < lit,
            "le": lambda o: o.get(attr) is not None and str(o[attr]) <= lit,
            "sw": lambda o: str(o.get(attr, "")).lower().startswith(low),
            "co": lambda o: low in str(o.get(attr, "")).lower(),
        }
        if op not in ops:
            raise QueryError(text)
        return ops[op]

    pred = expr()
    if i != len(toks):
        raise QueryError(text)
    return pred


# -- the index ----------------------------------------------------------------------------------


@dataclass
class Item:
    """One listable object: its Okta id, JSON bytes, and the flat fields filters look at."""

    id: str
    body: bytes
    fields: dict[str, Any]


class OktaIndex:
    """Everything the fake serves for one `tenant.clock` value, built in O(tenant)."""

    def __init__(self, tenant: Tenant, timeline: Timeline, base: str) -> None:
        self.clock = tenant.clock
        self.base = base
        self.tenant = tenant
        tl = timeline
        self.users: dict[str, Item] = {}
        self.user_tid: dict[str, str] = {}  # okta id -> tenant id
        self.login: dict[str, str] = {}  # lower-cased login -> okta id
        for u in tenant.users.values():
            oid = okta_id("00u", u.id)
            self.user_tid[oid] = u.id
            self.login[u.user_name.lower()] = oid
            self.users[oid] = self._user_item(oid, u, tl.ms(u.changed_at))
        self.user_ids = sorted(self.users)
        self.groups: dict[str, Item] = {}
        self.group_members: dict[str, list[str]] = {}  # okta group id -> sorted okta user ids
        self._member_tids: dict[str, set[str] | None] = {}
        for g in tenant.groups.values():
            gid = okta_id("00g", g.id)
            self._member_tids[gid] = g.user_ids
            ts = tl.ms(g.changed_at)
            self.groups[gid] = self._group_item(gid, g.name, g.description, group_type(g), ts, ts)
        everyone = okta_id("00g", EVERYONE)
        self._member_tids[everyone] = None  # every user
        last_user = max((u.changed_at for u in tenant.users.values()), default=1)
        self.groups[everyone] = self._group_item(
            everyone, "Everyone", "All users in your organization", "BUILT_IN",
            tl.ms(1), tl.ms(last_user))
        self.group_ids = sorted(self.groups)
        self._user_groups: dict[str, list[str]] | None = None
        self.events = self._events(tenant, tl)
        self._cache: dict[tuple[str, str], list[str]] = {}

    # -- objects

    def _user_item(self, oid: str, u: FakeUser, ms: int) -> Item:
        status = user_status(u)
        created = iso(ms - 86_400_000 if ms > 86_400_000 else ms)
        updated = iso(ms)
        obj = {
            "id": oid,
            "status": status,
            "created": created,
            "activated": None if status in ("STAGED", "PROVISIONED") else created,
            "statusChanged": updated,
            "lastLogin": None,
            "lastUpdated": updated,
            "passwordChanged": created,
            "type": {"id": "oty1fake0000000000x7"},
            "profile": {
                "firstName": u.given_name,
                "lastName": u.family_name,
                "mobilePhone": None,
                "secondEmail": None,
                "login": u.user_name,
                "email": u.user_name,
                "displayName": u.display_name,
            },
            "credentials": {
                "password": {},
                "emails": [{"value": u.user_name, "status": "VERIFIED", "type": "PRIMARY"}],
                "provider": {"type": "OKTA", "name": "OKTA"},
            },
            "_links": {"self": {"href": f"{self.base}/api/v1/users/{oid}"}},
        }
        fields = {"id": oid, "status": status, "lastUpdated": updated, "created": created,
                  "profile.login": u.user_name, "profile.email": u.user_name,
                  "profile.firstName": u.given_name, "profile.lastName": u.family_name}
        return Item(oid, orjson.dumps(obj), fields)

    def _group_item(self, gid: str, name: str, description: str, gtype: str, updated_ms: int,
                    members_ms: int) -> Item:
        obj = {
            "id": gid,
            "created": iso(min(updated_ms, members_ms)),
            "lastUpdated": iso(updated_ms),
            "lastMembershipUpdated": iso(members_ms),
            "objectClass": ["okta:user_group"] if gtype != "APP_GROUP"
            else ["okta:windows_security_principal"],
            "type": gtype,
            "profile": {"name": name, "description": description or None},
            "_links": {
                "logo": [{"name": "medium", "href": "https://op1static.oktacdn.com/assets/img/"
                          "logos/groups/okta-medium.png", "type": "image/png"}],
                "users": {"href": f"{self.base}/api/v1/groups/{gid}/users"},
                "apps": {"href": f"{self.base}/api/v1/groups/{gid}/apps"},
            },
        }
        fields = {"id": gid, "type": gtype, "lastUpdated": obj["lastUpdated"],
                  "lastMembershipUpdated": obj["lastMembershipUpdated"],
                  "created": obj["created"], "profile.name": name,
                  "profile.description": description}
        return Item(gid, orjson.dumps(obj), fields)

    def _events(self, tenant: Tenant, tl: Timeline) -> list[Item]:
        """System Log events for deletions (Okta's only record of a deleted object)."""
        out: list[Item] = []
        for kind, deleted in (("user", tenant.deleted_users), ("group", tenant.deleted_groups)):
            for tid, clock in deleted.items():
                ms = tl.ms(clock)
                oid = okta_id("00u" if kind == "user" else "00g", tid)
                etype = "user.lifecycle.delete.initiated" if kind == "user" \
                    else "group.lifecycle.delete"
                uuid = f"{ms:013d}-{oid}"
                obj = {
                    "uuid": uuid, "published": iso(ms), "eventType": etype, "version": "0",
                    "severity": "INFO", "displayMessage": f"Delete {kind}",
                    "actor": {"id": "00ufakeadmin00000000", "type": "User",
                              "alternateId": "admin@" + tenant.domain, "displayName": "Admin"},
                    "outcome": {"result": "SUCCESS", "reason": None},
                    "target": [{"id": oid, "type": "User" if kind == "user" else "UserGroup",
                                "alternateId": "unknown", "displayName": "unknown"}],
                }
                out.append(Item(uuid, orjson.dumps(obj), {
                    "eventType": etype, "published": obj["published"], "target.id": oid}))
        out.sort(key=lambda e: e.id)
        return out

    # -- queries

    def members(self, gid: str) -> list[str]:
        """Sorted Okta ids of the group's direct user members (nesting ignored: Okta has none)."""
        got = self.group_members.get(gid)
        if got is None:
            tids = self._member_tids[gid]
            got = self.user_ids if tids is None else sorted(okta_id("00u", t) for t in tids)
            self.group_members[gid] = got
        return got

    def groups_of(self, uid: str) -> list[str]:
        """Sorted Okta group ids that directly contain the user (Everyone included)."""
        if self._user_groups is None:
            rev: dict[str, list[str]] = {u: [] for u in self.users}
            for gid in self.group_ids:
                for u in self.members(gid):
                    rev.setdefault(u, []).append(gid)
            self._user_groups = rev
        return self._user_groups.get(uid, [])

    def matching(self, kind: str, items: dict[str, Item], ids: list[str], expr: str) -> list[str]:
        """Ids whose fields satisfy `expr` (cached per expression for this index)."""
        key = (kind, expr)
        if key not in self._cache:
            pred = parse_query(expr)
            self._cache[key] = [i for i in ids if pred(items[i].fields)]
        return self._cache[key]


def page_after(ids: list[str], after: str | None, limit: int) -> tuple[list[str], str | None]:
    """One page of `ids` strictly after the cursor `after`; the next cursor (last id) or None."""
    start = bisect.bisect_right(ids, after) if after else 0
    chunk = ids[start:start + limit]
    nxt = chunk[-1] if chunk and start + limit < len(ids) else None
    return chunk, nxt
