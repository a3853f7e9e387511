"""`Auth0Connector`: reads one Auth0 tenant through `auth0-python` (Management API v2)."""

from __future__ import annotations

import logging
from typing import Any, ClassVar
from urllib.parse import urlsplit

from connectors.auth0.client import Auth0Api, Endpoint
from connectors.auth0.reader import TEAM_SOURCES, org_to_group, role_to_group, to_user
from connectors.auth0.snapshot import PER_PAGE_MAX, SnapshotReader
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
from syncd.reconcile.snapshot import Snapshot, SnapshotGroup, SnapshotUser, UserGroups

log = logging.getLogger(__name__)

USERS_SOURCES = ("auto", "export", "list")


class Auth0Connector(Connector):
    """One Auth0 tenant, read with a Machine-to-Machine application (client credentials).

    `domain` is the tenant's domain (`acme.eu.auth0.com`, not a custom domain: the Management
    API answers only on the tenant domain); `audience` defaults to `https://{domain}/api/v2/`.
    `base_url` (tests, proxies) replaces `https://{domain}` as the address called, for the token
    endpoint and the API alike; plain http only to loopback.

    `teams`: "roles" (default), "organizations" or "both" — Auth0 has no groups and no
    nesting. `users_source`: "auto", "export" or "list" (see `connectors.auth0.snapshot`).
    `page_size` (≤ 100), `concurrency` (member lists read at once; Auth0's Management API rate
    limit is per tenant and shared), `max_retries` per request, `time_budget` (seconds) per
    snapshot or login lookup, `request_timeout` (seconds) per HTTP try, `export_poll_interval`
    (seconds, first wait between export job polls; grows to 5 s). `max_connection_failures` in
    a row stop a snapshot (see `connectors.breaker`).
    """

    kind: ClassVar[str] = "auth0"

    def __init__(
        self,
        directory: str,
        *,
        domain: str,
        client_id: str,
        client_secret: str,
        audience: str | None = None,
        base_url: str | None = None,
        teams: str = "roles",
        users_source: str = "auto",
        page_size: int = 100,
        concurrency: int = 4,
        max_retries: int = 3,
        time_budget: float = 900.0,
        request_timeout: float = 30.0,
        export_poll_interval: float = 1.0,
        max_connection_failures: int = DEFAULT_THRESHOLD,
    ) -> None:
        super().__init__(directory)
        Breaker(max_connection_failures)  # validates
        self.max_connection_failures = max_connection_failures
        domain = (domain or "").strip().removeprefix("https://").rstrip("/")
        if not domain or "/" in domain:
            raise ConfigError(f"domain must be a tenant domain like acme.eu.auth0.com, not {domain!r}")
        base = check_base_url(base_url or f"https://{domain}")
        if urlsplit(base).path not in ("", "/"):
            raise ConfigError("base_url is the tenant's scheme://host[:port], without /api/v2")
        if teams not in TEAM_SOURCES:
            raise ConfigError(f"teams must be one of {', '.join(TEAM_SOURCES)}, not {teams!r}")
        if users_source not in USERS_SOURCES:
            raise ConfigError(f"users_source must be one of {', '.join(USERS_SOURCES)}")
        if page_size < 1 or concurrency < 1 or max_retries < 0:
            raise ConfigError("page_size and concurrency must be >= 1, max_retries >= 0")
        if time_budget <= 0 or request_timeout <= 0 or export_poll_interval <= 0:
            raise ConfigError("time_budget, request_timeout and export_poll_interval must be > 0 seconds")
        self.teams, self.users_source = teams, users_source
        self.page_size, self.concurrency = min(page_size, PER_PAGE_MAX), concurrency
        self.time_budget, self.poll_interval = time_budget, export_poll_interval
        endpoint = Endpoint(domain, base, audience or f"https://{domain}/api/v2/")
        self.api = Auth0Api(
            endpoint=endpoint,
            client_id=client_id,
            client_secret=client_secret,
            request_timeout=request_timeout,
            max_retries=max_retries,
            connections=concurrency + 2,
        )

    async def snapshot(
        self, *, cursor: str | None = None, progress: ProgressCallback | None = None
    ) -> Snapshot:
        """A full read every time: Auth0 has no delta read (a cursor is ignored)."""
        breaker = Breaker(self.max_connection_failures)
        with breaker_scope(breaker):
            snap = await self._snapshot(progress)
        record(snap, breaker)
        return snap

    async def _snapshot(self, progress: ProgressCallback | None) -> Snapshot:
        self.api.meter.api_calls = self.api.meter.throttles = 0
        reader = SnapshotReader(
            self.api,
            self.directory,
            page_size=self.page_size,
            concurrency=self.concurrency,
            teams=self.teams,
            users_source=self.users_source,
            deadline=Deadline(self.time_budget),
            progress=progress,
            poll_interval=self.poll_interval,
        )
        return await reader.full()

    async def user_groups(self, user: str) -> UserGroups:
        """The user's roles and/or organizations (Auth0 is flat: direct = all).

        `/users/{id}/roles` and `/users/{id}/organizations` list every role and organization
        the user has, read to the end: the result reports every team (`UserGroups.complete`,
        nothing `unseen`), which is what the snapshot's member lists say too."""
        deadline = Deadline(self.time_budget)
        meter = self.api.meter
        meter.api_calls = meter.throttles = 0
        pages, notes = [0], []
        found = await self._find_user(user, deadline, pages)
        groups: list[SnapshotGroup] = []
        if found is not None:
            uid = _quote(found.external_id)
            if self.teams in ("roles", "both"):
                roles = await self._paged(
                    f"/users/{uid}/roles", "roles", "the user's roles", deadline, pages, notes
                )
                groups += [role_to_group(r) for r in roles]
            if self.teams in ("organizations", "both"):
                groups += [
                    org_to_group(o)
                    for o in await self._paged(
                        f"/users/{uid}/organizations",
                        "organizations",
                        "the user's organizations",
                        deadline,
                        pages,
                        notes,
                    )
                ]
        # a truncated list cannot tell absence: the login then adds only (`UserGroups.complete`)
        out = UserGroups(self.directory, found, tuple(groups), complete=not notes, notes=tuple(notes))
        out.stats.api_calls, out.stats.throttles, out.stats.pages = meter.api_calls, meter.throttles, pages[0]
        return out

    async def _paged(
        self, path: str, key: str, what: str, deadline: Deadline, pages: list[int], notes: list[str]
    ) -> list[dict[str, Any]]:
        """A page/per_page list read to its end (a user's roles or organizations)."""
        out: list[dict[str, Any]] = []
        page = 0
        while True:
            doc = await self.api.call(
                "GET",
                path,
                what=what,
                deadline=deadline,
                params={"page": page, "per_page": 100, "include_totals": "true"},
            )
            pages[0] += 1
            if not isinstance(doc, dict) or not isinstance(doc.get(key), list):
                raise BadDataError(f"{what}: the answer has no list {key!r}")
            out += doc[key]
            page += 1
            total = int(doc.get("total", 0))
            if not doc[key] or len(out) >= total:
                return out
            if page * 100 >= 1000:  # Auth0 lists no further: the rest cannot be seen
                notes.append(f"{what}: only the first 1000 of {total} can be listed")
                return out

    async def _find_user(self, key: str, deadline: Deadline, pages: list[int]) -> SnapshotUser | None:
        """By user_id (`provider|id`), else by email (`/users-by-email`), else by username."""
        try:
            if "|" in key:
                try:
                    doc = await self.api.call(
                        "GET", f"/users/{_quote(key)}", what="the user", deadline=deadline
                    )
                    pages[0] += 1
                    return _user(doc)
                except NotFoundError:
                    return None
            if "@" in key:
                for email in dict.fromkeys((key, key.lower())):
                    docs = await self.api.call(
                        "GET",
                        "/users-by-email",
                        what="user by email",
                        deadline=deadline,
                        params={"email": email},
                    )
                    pages[0] += 1
                    if isinstance(docs, list) and docs:
                        return _user(docs[0])
                return None
            q = 'username:"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
            doc = await self.api.call(
                "GET",
                "/users",
                what="user by username",
                deadline=deadline,
                params={"q": q, "search_engine": "v3", "per_page": 2},
            )
            pages[0] += 1
            return _user(doc[0]) if isinstance(doc, list) and doc else None
        except ConfigError as exc:  # a 400: the key is not a valid id, email or query
            log.info("auth0 %s: lookup of %r refused: %s", self.directory, key, exc)
            return None

    async def aclose(self) -> None:
        await self.api.aclose()


def _quote(user_id: str) -> str:
    from urllib.parse import quote

    return quote(user_id, safe="")


def _user(doc: Any) -> SnapshotUser:
    try:
        return to_user(doc)
    except (KeyError, TypeError, AttributeError) as exc:
        raise BadDataError("the user: not an Auth0 user object") from exc
