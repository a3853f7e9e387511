"""`KeycloakConnector`: reads one Keycloak realm through the official `python-keycloak` SDK."""

from __future__ import annotations

import logging
import re
from typing import Any, ClassVar
from urllib.parse import quote

from connectors.base import (
    ConfigError,
    Connector,
    NotFoundError,
    ProgressCallback,
    check_base_url,
)
from connectors.breaker import DEFAULT_THRESHOLD, Breaker, record
from connectors.breaker import scope as breaker_scope
from connectors.budget import Deadline
from connectors.keycloak.client import KeycloakApi
from connectors.keycloak.reader import (
    TeamName,
    parse_object,
    parse_objects,
    to_group,
    to_user,
)
from connectors.keycloak.snapshot import SnapshotReader
from syncd.reconcile.snapshot import Snapshot, SnapshotUser, UserGroups

log = logging.getLogger(__name__)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class KeycloakConnector(Connector):
    """One Keycloak realm (subgroups from `/groups/{id}/children` on Keycloak 23+, from the
    `subGroups` a server before 23 fills in `GET /groups`).

    Credentials: a confidential client with *Service accounts roles* enabled (`client_id`,
    `client_secret`); the SDK gets tokens with the client credentials grant from
    `{server_url}/realms/{token_realm or realm}/protocol/openid-connect/token`. Its service
    account needs the `realm-management` client roles `view-users` and `query-groups`.
    `server_url` is the server root (`https://sso.example.com`, or `…/auth` for a server still
    on the legacy context path); plain http only to loopback.

    `page_size` is the `max` of every list (Keycloak sets no upper bound; 500 keeps an answer
    under ~1 MB). `concurrency`: member and children lists read at once. `max_retries` per
    request; `time_budget` (seconds) bounds a snapshot or a login lookup; `request_timeout`
    (seconds) one HTTP try. `team_name`: a team's display name is the group's `name` or its
    `path` (`/parent/child`; unique in the realm, names are unique only among siblings).
    `max_connection_failures` in a row stop a snapshot (see `connectors.breaker`).

    Every read is full: the connector keeps no cursor, and a saved cursor is ignored. Keycloak's
    admin events (`/admin-events`) would be the only change feed, and they cannot prove a delta
    complete: they are recorded only when the realm enables them (`adminEventsEnabled`), expire
    (`adminEventsExpiration`), and record only changes made through the admin API. Users created
    by self-registration or by a first login through an identity provider, group memberships
    set by identity-provider mappers at login, and users and groups imported by user federation
    (LDAP, Kerberos) change the realm without any admin event; a delta built from them would
    miss those changes silently, and a missed disable keeps a leaver's access. A full read of
    100k users is a few thousand requests (see docs/benchmarks.md).
    """

    kind: ClassVar[str] = "keycloak"

    def __init__(
        self,
        directory: str,
        *,
        server_url: str,
        realm: str,
        client_id: str,
        client_secret: str,
        token_realm: str | None = None,
        team_name: TeamName = "name",
        page_size: int = 500,
        concurrency: int = 4,
        max_retries: int = 3,
        time_budget: float = 900.0,
        request_timeout: float = 30.0,
        max_connection_failures: int = DEFAULT_THRESHOLD,
    ) -> None:
        super().__init__(directory)
        Breaker(max_connection_failures)  # validates
        self.max_connection_failures = max_connection_failures
        self.server_url = check_base_url(server_url)
        if page_size < 1 or concurrency < 1 or max_retries < 0:
            raise ConfigError("page_size and concurrency must be >= 1, max_retries >= 0")
        if time_budget <= 0 or request_timeout <= 0:
            raise ConfigError("time_budget and request_timeout must be > 0 seconds")
        if team_name not in ("name", "path"):
            raise ConfigError("team_name must be 'name' or 'path'")
        self.team_name: TeamName = team_name
        self.page_size, self.concurrency, self.time_budget = page_size, concurrency, time_budget
        self.api = KeycloakApi(
            server_url=self.server_url,
            realm=realm,
            client_id=client_id,
            client_secret=client_secret,
            token_realm=token_realm,
            request_timeout=request_timeout,
            max_retries=max_retries,
            connections=concurrency + 2,
        )

    async def snapshot(
        self, *, cursor: str | None = None, progress: ProgressCallback | None = None
    ) -> Snapshot:
        """A full read (a `cursor` is ignored; see the class docstring)."""
        self.api.meter.api_calls = self.api.meter.throttles = 0
        breaker = Breaker(self.max_connection_failures)
        reader = SnapshotReader(
            self.api,
            self.directory,
            page_size=self.page_size,
            concurrency=self.concurrency,
            team_name=self.team_name,
            deadline=Deadline(self.time_budget),
            progress=progress,
        )
        with breaker_scope(breaker):
            snap = await reader.full()
        record(snap, breaker)
        return snap

    async def user_groups(self, user: str) -> UserGroups:
        """The user's direct groups (`/users/{id}/groups`) and all their ancestors (a member of
        a subgroup is a member of its parents), read through `parentId`.

        That is exactly a snapshot's membership (members of a group's whole subtree), and
        `/users/{id}/groups` lists every group the user is directly in, so the result reports
        every group (`UserGroups.complete`, nothing `unseen`)."""
        deadline = Deadline(self.time_budget)
        meter = self.api.meter
        meter.api_calls = meter.throttles = 0
        found = await self._find_user(user, deadline)
        groups: dict[str, dict[str, Any]] = {}
        pages = 0
        if found is not None:
            path = self.api.path(f"users/{quote(found.external_id, safe='')}/groups")
            first = 0
            while True:
                body = await self.api.get(
                    path,
                    {"first": first, "max": self.page_size, "briefRepresentation": "true"},
                    what="the user's groups",
                    deadline=deadline,
                )
                pages += 1
                items = parse_objects(body, "the user's groups")
                groups.update((g["id"], g) for g in items)
                if len(items) < self.page_size:
                    break
                first += len(items)
            pages += await self._add_ancestors(groups, deadline)
        out = UserGroups(
            self.directory, found, tuple(to_group(g, frozenset(), self.team_name) for g in groups.values())
        )
        out.stats.api_calls, out.stats.throttles, out.stats.pages = (meter.api_calls, meter.throttles, pages)
        return out

    async def _add_ancestors(self, groups: dict[str, dict[str, Any]], deadline: Deadline) -> int:
        """Add every ancestor of `groups` (by `parentId`, else by path through
        `/group-by-path`); returns the requests made."""
        calls = 0
        todo = list(groups.values())
        while todo:
            g = todo.pop()
            parent_id = g.get("parentId")
            if parent_id:
                if parent_id in groups:
                    continue
                body = await self.api.get(
                    self.api.path(f"groups/{quote(parent_id, safe='')}"),
                    what="a parent group",
                    deadline=deadline,
                )
            else:
                parts = str(g.get("path") or "").strip("/").split("/")
                if len(parts) < 2:
                    continue  # a top-level group
                parent_path = "/".join(quote(p, safe="") for p in parts[:-1])
                if any(str(x.get("path", "")).strip("/") == "/".join(parts[:-1]) for x in groups.values()):
                    continue
                body = await self.api.get(
                    self.api.path(f"group-by-path/{parent_path}"), what="a parent group", deadline=deadline
                )
            calls += 1
            parent = parse_object(body, "a parent group")
            if parent["id"] not in groups:
                groups[parent["id"]] = parent
                todo.append(parent)
        return calls

    async def _find_user(self, key: str, deadline: Deadline) -> SnapshotUser | None:
        """By Keycloak id, else by exact username, else by exact email."""
        if _UUID.fullmatch(key):
            try:
                body = await self.api.get(self.api.path(f"users/{key}"), what="the user", deadline=deadline)
                return to_user(parse_object(body, "the user"))
            except NotFoundError:
                pass
        searches = [{"username": key, "exact": "true"}]
        if "@" in key:
            searches.append({"email": key, "exact": "true"})
        for params in searches:
            body = await self.api.get(
                self.api.path("users"),
                {**params, "briefRepresentation": "true", "max": 2},
                what="user lookup",
                deadline=deadline,
            )
            items = parse_objects(body, "user lookup")
            if items:
                return to_user(items[0])
        return None

    async def aclose(self) -> None:
        await self.api.aclose()
