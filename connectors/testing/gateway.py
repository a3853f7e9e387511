"""A LiteLLM-style gateway's SCIM endpoint (`/scim/v2`), for tests, benchmarks and the demo.

It reproduces what a SCIM client of MishikaLLM/LiteLLM meets (docs/gateway.md):
- `count` is capped at 100 (larger asks are cut silently); the default is 10, newest first;
- filters: only `userName eq "…"` (Users) and `displayName eq "…"` (Groups) are understood;
  any other filter is answered with every resource, unfiltered;
- it assigns its own ids: users get a fresh id; a group takes the request's `id`, else its
  `externalId`, else a fresh id (a second group with the same externalId is a 409);
- `POST /Users` with an email that already exists updates that user and keeps its old id
  (upsert by email); a userName already taken (another email) is a 409;
- `externalId` is dropped by POST, stored by PUT/PATCH, and never returned;
- `active` is write-only: stored, but every read answers `"active": true`;
- `PATCH /Users` ignores `emails` and `userName` (only PUT changes them);
- an unknown member id in a group write becomes a placeholder user;
- errors are FastAPI bodies, `{"detail": {"error": "…"}}`, not SCIM Error bodies;
- without its licence (`licensed=False`) every route answers 403 with the enterprise message.

Faults come from a `FaultPlan` (throttle with or without Retry-After, 5xx, timeout). State is
kept on the `Gateway` object, so a test can stop the server and start a new one on the same
state (a restart mid-push).
"""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from connectors.testing.faults import FaultPlan

MAX_COUNT = 100
LICENCE_ERROR = (
    "You must be a LiteLLM Enterprise user to use this feature. If you have a license please set "
    "`LITELLM_LICENSE` in your env."
)
_EQ = re.compile(r'^\s*(userName|displayName)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)


@dataclass
class GwUser:
    id: str
    user_name: str
    email: str | None
    given_name: str | None = None
    family_name: str | None = None
    sso_id: str | None = None  # externalId, kept but never returned
    active: bool = True  # write-only
    placeholder: bool = False
    teams: set[str] = field(default_factory=set)


@dataclass
class GwTeam:
    id: str
    alias: str
    members: list[str] = field(default_factory=list)  # user ids, in insertion order


def _err(status: int, msg: str) -> JSONResponse:
    return JSONResponse({"detail": {"error": msg}}, status_code=status)


class Gateway:
    """The gateway's state and its ASGI app (`app()`); thread-safe."""

    def __init__(
        self, token: str = "sk-gateway-scim", *, faults: FaultPlan | None = None, licensed: bool = True
    ) -> None:
        self.token = token
        self.faults = faults or FaultPlan()
        self.licensed = licensed
        self.users: dict[str, GwUser] = {}
        self.teams: dict[str, GwTeam] = {}
        self.writes = 0
        self.requests = 0
        self._lock = threading.RLock()
        self._by_email: dict[str, str] = {}
        self._by_name: dict[str, str] = {}
        self._newest: dict[str, list[str] | None] = {"users": None, "teams": None}

    # -- state ----------------------------------------------------------------------------

    def _changed(self, what: str) -> None:
        self._newest[what] = None

    def _newest_first(self, what: str) -> list[str]:
        got = self._newest[what]
        if got is None:
            got = self._newest[what] = list(reversed(self.users if what == "users" else self.teams))
        return got

    def user_json(self, u: GwUser) -> dict[str, Any]:
        body: dict[str, Any] = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": u.id,
            "userName": u.user_name,
            "active": True,
            "emails": [{"value": u.email}] if u.email else [],
            "groups": [{"value": t} for t in sorted(u.teams)],
            "meta": {"resourceType": "User"},
        }
        if u.given_name or u.family_name:
            body["name"] = {
                k: v for k, v in (("givenName", u.given_name), ("familyName", u.family_name)) if v
            }
        return body

    def team_json(self, t: GwTeam) -> dict[str, Any]:
        return {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": t.id,
            "displayName": t.alias,
            "members": [
                {"value": m, "display": self.users[m].email or m} for m in t.members if m in self.users
            ],
            "meta": {"resourceType": "Group"},
        }

    def _index(self, u: GwUser, *, remove: bool = False) -> None:
        for idx, key in ((self._by_email, u.email), (self._by_name, u.user_name)):
            if key:
                if remove:
                    if idx.get(key.casefold()) == u.id:
                        del idx[key.casefold()]
                else:
                    idx[key.casefold()] = u.id

    def _ensure_member(self, uid: str) -> None:
        if uid not in self.users:  # LiteLLM: an unknown member becomes a placeholder user
            u = GwUser(uid, uid, None, placeholder=True)
            self.users[uid] = u
            self._index(u)
            self._changed("users")

    def _set_members(self, t: GwTeam, ids: list[str]) -> None:
        for m in t.members:
            if m in self.users:
                self.users[m].teams.discard(t.id)
        t.members = []
        self._add_members(t, ids)

    def _add_members(self, t: GwTeam, ids: list[str]) -> None:
        have = set(t.members)
        for m in ids:
            self._ensure_member(m)
            if m not in have:
                t.members.append(m)
                have.add(m)
            self.users[m].teams.add(t.id)

    def _remove_members(self, t: GwTeam, ids: set[str]) -> None:
        t.members = [m for m in t.members if m not in ids]
        for m in ids:
            if m in self.users:
                self.users[m].teams.discard(t.id)

    def _apply_user(self, u: GwUser, body: dict[str, Any], *, names: bool) -> None:
        if names:
            if isinstance(body.get("userName"), str):
                u.user_name = body["userName"]
            emails = body.get("emails")
            if isinstance(emails, list):
                first = next((e.get("value") for e in emails if isinstance(e, dict) and e.get("value")), None)
                u.email = first
        name = body.get("name")
        if isinstance(name, dict):
            u.given_name = name.get("givenName") or u.given_name
            u.family_name = name.get("familyName") or u.family_name
        if isinstance(body.get("active"), bool):
            u.active = body["active"]

    # -- the app --------------------------------------------------------------------------

    def app(self) -> FastAPI:
        app = FastAPI(title="fake LiteLLM-style gateway SCIM")
        gw = self

        @app.middleware("http")
        async def guard(request: Request, call_next: Any) -> Response:
            with gw._lock:
                gw.requests += 1
            rule = gw.faults.check(request.method, request.url.path)
            if rule is not None:
                if rule.kind == "throttle":
                    headers = {"Retry-After": f"{rule.retry_after:g}"} if rule.retry_after else {}
                    return JSONResponse({"detail": "Too Many Requests"}, status_code=429, headers=headers)
                if rule.kind == "error":
                    return _err(rule.status, "Internal Server Error: upstream database unavailable")
                if rule.kind == "timeout":
                    await asyncio.sleep(rule.delay)
            if request.headers.get("authorization") != f"Bearer {gw.token}":
                return _err(401, "Authentication Error, Invalid proxy server token passed.")
            if not gw.licensed:
                return _err(403, LICENCE_ERROR)
            if request.method != "GET":
                with gw._lock:
                    gw.writes += 1
            return await call_next(request)

        def page(what: str, start: int, count: int, flt: str | None) -> dict[str, Any]:
            count = max(1, min(count, MAX_COUNT))
            start = max(1, start)
            with gw._lock:
                ids = gw._newest_first(what)
                m = _EQ.match(flt or "")
                attr = "userName" if what == "users" else "displayName"
                if m and m.group(1).casefold() == attr.casefold():
                    want = m.group(2).replace('\\"', '"').casefold()
                    if what == "users":
                        ids = [i for i in ids if gw.users[i].user_name.casefold() == want]
                    else:
                        ids = [i for i in ids if gw.teams[i].alias.casefold() == want]
                chunk = ids[start - 1 : start - 1 + count]
                render = gw.user_json if what == "users" else gw.team_json
                store: dict[str, Any] = gw.users if what == "users" else gw.teams
                res = [render(store[i]) for i in chunk]
                return {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                    "totalResults": len(ids),
                    "startIndex": start,
                    "itemsPerPage": len(res),
                    "Resources": res,
                }

        @app.get("/scim/v2/Users")
        def list_users(startIndex: int = 1, count: int = 10, filter: str | None = None) -> Any:
            return page("users", startIndex, count, filter)

        @app.get("/scim/v2/Groups")
        def list_groups(startIndex: int = 1, count: int = 10, filter: str | None = None) -> Any:
            return page("teams", startIndex, count, filter)

        @app.get("/scim/v2/Users/{uid}")
        def get_user(uid: str) -> Any:
            with gw._lock:
                u = gw.users.get(uid)
                return gw.user_json(u) if u else _err(404, f"User not found with ID: {uid}")

        @app.post("/scim/v2/Users", status_code=201)
        async def create_user(request: Request) -> Any:
            body = await request.json()
            emails = body.get("emails") or []
            email = next((e.get("value") for e in emails if isinstance(e, dict) and e.get("value")), None)
            with gw._lock:
                if email and email.casefold() in gw._by_email:  # upsert by email: the old id stays
                    u = gw.users[gw._by_email[email.casefold()]]
                    gw._index(u, remove=True)
                    u.placeholder = False
                    gw._apply_user(u, body, names=True)
                    gw._index(u)
                    return JSONResponse(gw.user_json(u), status_code=201)
                name = body.get("userName")
                if not isinstance(name, str) or not name:
                    return _err(400, "userName is required")
                if name.casefold() in gw._by_name:
                    return _err(409, f"User already exists with username: {name}")
                u = GwUser(f"u-{uuid.uuid4().hex[:16]}", name, email)
                gw._apply_user(u, body, names=True)
                gw.users[u.id] = u
                gw._index(u)
                gw._changed("users")
                return JSONResponse(gw.user_json(u), status_code=201)

        @app.put("/scim/v2/Users/{uid}")
        async def put_user(uid: str, request: Request) -> Any:
            body = await request.json()
            with gw._lock:
                u = gw.users.get(uid)
                if u is None:
                    return _err(404, f"User not found with ID: {uid}")
                name = body.get("userName")
                if isinstance(name, str) and gw._by_name.get(name.casefold(), uid) != uid:
                    return _err(409, f"User already exists with username: {name}")
                gw._index(u, remove=True)
                gw._apply_user(u, body, names=True)
                if isinstance(body.get("externalId"), str):
                    u.sso_id = body["externalId"]
                gw._index(u)
                return gw.user_json(u)

        @app.patch("/scim/v2/Users/{uid}")
        async def patch_user(uid: str, request: Request) -> Any:
            body = await request.json()
            with gw._lock:
                u = gw.users.get(uid)
                if u is None:
                    return _err(404, f"User not found with ID: {uid}")
                for op in body.get("Operations") or []:
                    path, value = (op.get("path") or ""), op.get("value")
                    if path == "active" and isinstance(value, bool):
                        u.active = value
                    elif not path and isinstance(value, dict):
                        gw._apply_user(u, value, names=False)  # emails/userName ignored, silently
                    elif path == "externalId" and isinstance(value, str):
                        u.sso_id = value
                return gw.user_json(u)

        @app.delete("/scim/v2/Users/{uid}")
        def delete_user(uid: str) -> Any:
            with gw._lock:
                u = gw.users.pop(uid, None)
                if u is None:
                    return _err(404, f"User not found with ID: {uid}")
                gw._index(u, remove=True)
                for tid in u.teams:
                    if tid in gw.teams:
                        gw._remove_members(gw.teams[tid], {uid})
                gw._changed("users")
                return Response(status_code=204)

        @app.get("/scim/v2/Groups/{tid}")
        def get_group(tid: str) -> Any:
            with gw._lock:
                t = gw.teams.get(tid)
                return gw.team_json(t) if t else _err(404, f"Group not found with ID: {tid}")

        def member_ids(value: Any) -> list[str]:
            return [
                m["value"] for m in value or [] if isinstance(m, dict) and isinstance(m.get("value"), str)
            ]

        @app.post("/scim/v2/Groups", status_code=201)
        async def create_group(request: Request) -> Any:
            body = await request.json()
            with gw._lock:
                tid = body.get("id") or body.get("externalId") or f"t-{uuid.uuid4().hex[:16]}"
                if tid in gw.teams:
                    return _err(409, f"Group already exists with ID: {tid}")
                t = GwTeam(tid, body.get("displayName") or tid)
                gw.teams[tid] = t
                gw._add_members(t, member_ids(body.get("members")))
                gw._changed("teams")
                return JSONResponse(gw.team_json(t), status_code=201)

        @app.put("/scim/v2/Groups/{tid}")
        async def put_group(tid: str, request: Request) -> Any:
            body = await request.json()
            with gw._lock:
                t = gw.teams.get(tid)
                if t is None:
                    return _err(404, f"Group not found with ID: {tid}")
                t.alias = body.get("displayName") or t.alias
                gw._set_members(t, member_ids(body.get("members")))
                return gw.team_json(t)

        @app.patch("/scim/v2/Groups/{tid}")
        async def patch_group(tid: str, request: Request) -> Any:
            body = await request.json()
            with gw._lock:
                t = gw.teams.get(tid)
                if t is None:
                    return _err(404, f"Group not found with ID: {tid}")
                for op in body.get("Operations") or []:
                    kind, path, value = (op.get("op") or "").lower(), op.get("path") or "", op.get("value")
                    m = re.fullmatch(r'members\[value eq "([^"]+)"\]', path)
                    if kind == "add" and path == "members":
                        gw._add_members(t, member_ids(value))
                    elif kind == "remove" and m:
                        gw._remove_members(t, {m.group(1)})
                    elif kind == "remove" and path == "members":
                        gw._remove_members(t, set(member_ids(value)))
                    elif kind == "replace" and path == "members":
                        gw._set_members(t, member_ids(value))
                    elif kind == "replace" and path == "displayName" and isinstance(value, str):
                        t.alias = value
                    elif kind == "replace" and not path and isinstance(value, dict):
                        t.alias = value.get("displayName") or t.alias
                    else:
                        return _err(400, f"Unsupported patch operation: {op}")
                return Response(status_code=204)

        @app.delete("/scim/v2/Groups/{tid}")
        def delete_group(tid: str) -> Any:
            with gw._lock:
                t = gw.teams.pop(tid, None)
                if t is None:
                    return _err(404, f"Group not found with ID: {tid}")
                gw._remove_members(t, set(t.members))
                gw._changed("teams")
                return Response(status_code=204)

        return app

    # -- persistence (the demo keeps its stand-in gateway between runs) ---------------------

    def dump(self) -> dict[str, Any]:
        with self._lock:
            return {
                "users": [
                    {
                        k: getattr(u, k)
                        for k in (
                            "id",
                            "user_name",
                            "email",
                            "given_name",
                            "family_name",
                            "sso_id",
                            "active",
                            "placeholder",
                        )
                    }
                    for u in self.users.values()
                ],
                "teams": [{"id": t.id, "alias": t.alias, "members": t.members} for t in self.teams.values()],
            }

    def load(self, data: dict[str, Any]) -> None:
        with self._lock:
            for raw in data.get("users", []):
                u = GwUser(**raw)
                self.users[u.id] = u
                self._index(u)
            for raw in data.get("teams", []):
                t = GwTeam(raw["id"], raw["alias"])
                self.teams[t.id] = t
                self._add_members(t, list(raw["members"]))
            self._changed("users")
            self._changed("teams")

    # -- for assertions -------------------------------------------------------------------

    def snapshot(
        self,
    ) -> tuple[dict[str, tuple[str, str | None, bool]], dict[str, tuple[str, frozenset[str]]]]:
        """({user id: (userName, email, active)}, {team id: (alias, member userNames)}); placeholders
        included (a test asserts there are none)."""
        with self._lock:
            users = {u.id: (u.user_name, u.email, u.active) for u in self.users.values()}
            teams = {
                t.id: (t.alias, frozenset(self.users[m].user_name for m in t.members if m in self.users))
                for t in self.teams.values()
            }
            return users, teams
