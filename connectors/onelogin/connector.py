"""`OneLoginConnector`: reads one OneLogin account through the official `onelogin` SDK (4.x)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

import orjson

from connectors.base import (
    BadDataError,
    ConfigError,
    Connector,
    NotFoundError,
    ProgressCallback,
    check_base_url,
)
from connectors.breaker import DEFAULT_THRESHOLD, Breaker, record
from connectors.breaker import scope as breaker_scope
from connectors.budget import Deadline
from connectors.onelogin.client import OneLoginApi
from connectors.onelogin.reader import TEAM_SOURCES, to_group, to_role, to_user
from connectors.onelogin.snapshot import SnapshotReader, iterate_v2
from syncd.reconcile.snapshot import Snapshot, SnapshotGroup, SnapshotUser, UserGroups

log = logging.getLogger(__name__)


class OneLoginConnector(Connector):
    """One OneLogin account.

    Credentials: an API credential pair (`client_id`, `client_secret`) with the "Read users"
    scope (roles and groups are readable with it); the SDK trades it for an access token at
    `{base_url}/auth/oauth2/v2/token` and renews it before it expires (10 h) or on a 401.
    `base_url` is the account's API host (`https://acme.onelogin.com`, or the regional
    `https://api.us.onelogin.com` / `https://api.eu.onelogin.com`); plain http only to loopback.

    `teams`: "roles" (default), "groups" (each user's single `group_id`), or "both".
    `page_size`: None (default) asks each list for its maximum (users and role members 100,
    roles 650); a number caps every list at it. `concurrency` (role member lists read
    at once) defaults to 4: OneLogin's rate limit is per account and shared with every other
    client of the account. `max_retries` per request; `time_budget` (seconds) bounds a whole
    snapshot or login lookup; `request_timeout` (seconds) one HTTP try.
    `max_connection_failures` in a row stop a snapshot (see `connectors.breaker`).
    """

    kind: ClassVar[str] = "onelogin"

    def __init__(
        self,
        directory: str,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        teams: str = "roles",
        page_size: int | None = None,
        concurrency: int = 4,
        max_retries: int = 3,
        time_budget: float = 900.0,
        request_timeout: float = 30.0,
        max_connection_failures: int = DEFAULT_THRESHOLD,
    ) -> None:
        super().__init__(directory)
        Breaker(max_connection_failures)  # validates
        self.max_connection_failures = max_connection_failures
        self.base_url = check_base_url(base_url)
        if not client_id or not client_secret:
            raise ConfigError("OneLogin needs an API credential pair: client_id and client_secret")
        if teams not in TEAM_SOURCES:
            raise ConfigError(f"teams must be one of {list(TEAM_SOURCES)}, not {teams!r}")
        if (page_size is not None and page_size < 1) or concurrency < 1 or max_retries < 0:
            raise ConfigError("page_size and concurrency must be >= 1, max_retries >= 0")
        if time_budget <= 0 or request_timeout <= 0:
            raise ConfigError("time_budget and request_timeout must be > 0 seconds")
        self.teams, self.page_size, self.concurrency = teams, page_size, concurrency
        self.time_budget = time_budget
        self.api = OneLoginApi(
            base_url=self.base_url,
            client_id=client_id,
            client_secret=client_secret,
            request_timeout=request_timeout,
            max_retries=max_retries,
            connections=concurrency + 2,
        )

    async def snapshot(
        self, *, cursor: str | None = None, progress: ProgressCallback | None = None
    ) -> Snapshot:
        """Always a full read (OneLogin offers no change feed for role membership)."""
        self.api.meter.api_calls = self.api.meter.throttles = 0
        reader = SnapshotReader(
            self.api,
            self.directory,
            page_size=self.page_size,
            concurrency=self.concurrency,
            teams=self.teams,
            deadline=Deadline(self.time_budget),
            progress=progress,
        )
        breaker = Breaker(self.max_connection_failures)
        with breaker_scope(breaker):
            snap = await reader.full()
        record(snap, breaker)
        return snap

    async def user_groups(self, user: str) -> UserGroups:
        """The user's roles (from the user's `role_ids`) and, with teams "groups"/"both", its
        one group: every team the snapshot would put the user in (roles do not nest). The user
        object lists every role the user holds, so the result reports every team: `complete`,
        nothing `unseen` (a login may remove the user from a team it no longer lists)."""
        deadline = Deadline(self.time_budget)
        meter = self.api.meter
        meter.api_calls = meter.throttles = 0
        obj = await self._find_user(user, deadline)
        groups: list[SnapshotGroup] = []
        found: SnapshotUser | None = None
        if obj is not None:
            found = to_user(obj)
            lookups: list[Any] = []
            if self.teams in ("roles", "both"):
                lookups += [
                    self._one("/api/2/roles/{role_id}", {"role_id": int(r)}, "role", deadline)
                    for r in obj.get("role_ids") or ()
                ]
            if self.teams in ("groups", "both") and obj.get("group_id") is not None:
                lookups.append(
                    self._one(
                        "/api/1/groups/{group_id}", {"group_id": int(obj["group_id"])}, "group", deadline
                    )
                )
            for kind, g in await asyncio.gather(*lookups):
                if g is not None:
                    groups.append(to_role(g) if kind == "role" else to_group(g))
        out = UserGroups(self.directory, found, tuple(groups))
        out.stats.api_calls, out.stats.throttles = meter.api_calls, meter.throttles
        return out

    async def _one(
        self, path: str, path_params: dict[str, Any], kind: str, deadline: Deadline
    ) -> tuple[str, dict[str, Any] | None]:
        """One role (v2 object) or group (v1 envelope); None if it vanished meanwhile."""
        try:
            page = await self.api.get(
                path, what=f"the user's {kind}", deadline=deadline, path_params=path_params
            )
        except NotFoundError:
            return kind, None
        doc = self._json(page.body, f"the user's {kind}")
        if kind == "group":  # v1: {"status": …, "data": [ {id, name, reference} ]}
            data = doc.get("data") if isinstance(doc, dict) else None
            doc = data[0] if isinstance(data, list) and data else None
        if not isinstance(doc, dict) or "id" not in doc:
            raise BadDataError(f"the user's {kind}: not a OneLogin {kind} object")
        return kind, doc

    async def _find_user(self, key: str, deadline: Deadline) -> dict[str, Any] | None:
        """By OneLogin id, else by exact username, else by exact email; then the full object
        (`GET /api/2/users/{id}`, which carries `role_ids` and `group_id`)."""
        uid: int | None = int(key) if key.isdigit() else None
        if uid is None:
            for attr in ("username", "email") if "@" in key else ("username",):
                async for items in iterate_v2(
                    self.api,
                    "/api/2/users",
                    what=f"user by {attr}",
                    deadline=deadline,
                    limit=50,
                    extra=[(attr, key)],
                ):
                    hit = next((u for u in items if str(u.get(attr) or "").lower() == key.lower()), None)
                    if hit is not None:
                        uid = int(hit["id"])
                    break
                if uid is not None:
                    break
        if uid is None:
            return None
        try:
            page = await self.api.get(
                "/api/2/users/{user_id}", what="the user", deadline=deadline, path_params={"user_id": uid}
            )
        except NotFoundError:
            return await self._by_name(key, deadline) if key.isdigit() else None
        doc = self._json(page.body, "the user")
        if not isinstance(doc, dict) or "id" not in doc:
            raise BadDataError("the user: not a OneLogin user object")
        return doc

    async def _by_name(self, key: str, deadline: Deadline) -> dict[str, Any] | None:
        """A numeric key that is no user id may still be a username."""
        async for items in iterate_v2(
            self.api,
            "/api/2/users",
            what="user by username",
            deadline=deadline,
            limit=50,
            extra=[("username", key)],
        ):
            hit = next((u for u in items if str(u.get("username") or "") == key), None)
            if hit is None:
                return None
            page = await self.api.get(
                "/api/2/users/{user_id}",
                what="the user",
                deadline=deadline,
                path_params={"user_id": int(hit["id"])},
            )
            return self._json(page.body, "the user")
        return None

    @staticmethod
    def _json(body: str, what: str) -> Any:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadDataError(f"{what}: the answer is not valid JSON") from exc

    async def aclose(self) -> None:
        self.api.close()
