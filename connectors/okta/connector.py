"""`OktaConnector`: reads one Okta org through the official `okta` SDK (3.x, async)."""

from __future__ import annotations

import logging
from typing import ClassVar

import orjson

from connectors.base import (
    BadDataError,
    ConfigError,
    Connector,
    CursorExpired,
    NotFoundError,
    ProgressCallback,
    check_base_url,
)
from connectors.breaker import DEFAULT_THRESHOLD, Breaker, record
from connectors.breaker import scope as breaker_scope
from connectors.budget import Deadline
from connectors.okta.client import Credentials, OktaApi
from connectors.okta.paging import iterate
from connectors.okta.reader import GROUP_TYPES, parse_cursor, quote_value, to_group, to_user
from connectors.okta.snapshot import LogUnreadable, SnapshotReader
from syncd.reconcile.snapshot import Snapshot, SnapshotGroup, SnapshotUser, UserGroups

log = logging.getLogger(__name__)


class OktaConnector(Connector):
    """One Okta org.

    Credentials: `token` (an API token, sent as `SSWS …`) or `client_id` + `private_key`
    (PEM or JWK JSON; OAuth service app, private-key JWT; optional `kid`, `scopes`).
    `base_url` is the org URL (`https://acme.okta.com`), required; plain http only to loopback.
    `token_url` may only name the org's own `/oauth2/v1/token` (the SDK uses no other).

    `page_size` is capped per endpoint at Okta's maximum (users 200, groups and member lists
    10000, System Log 1000); 200 is the users maximum and Okta's advice for the others.
    `concurrency` (member lists read at once) defaults to 4: Okta's rate limits are per org and
    shared with every other client of the org. `max_retries` per request; `time_budget`
    (seconds) bounds a whole snapshot or login lookup; `request_timeout` (seconds) one HTTP try.
    `group_types`: which Okta group types are teams (BUILT_IN is the "Everyone" group);
    `group_search`: an optional Okta search expression narrowing the groups further.
    `cursor_overlap` (seconds): how far before a read's start the next delta begins.
    `max_connection_failures` in a row stop a snapshot (see `connectors.breaker`).
    """

    kind: ClassVar[str] = "okta"

    def __init__(self, directory: str, *, base_url: str, token: str | None = None,
                 client_id: str | None = None, private_key: str | None = None,
                 scopes: tuple[str, ...] | list[str] | None = None, kid: str | None = None,
                 token_url: str | None = None, page_size: int = 200, concurrency: int = 4,
                 max_retries: int = 3, time_budget: float = 900.0, request_timeout: float = 30.0,
                 group_types: tuple[str, ...] | list[str] = ("OKTA_GROUP", "APP_GROUP"),
                 group_search: str | None = None, cursor_overlap: float = 60.0,
                 max_connection_failures: int = DEFAULT_THRESHOLD) -> None:
        super().__init__(directory)
        Breaker(max_connection_failures)  # validates
        self.max_connection_failures = max_connection_failures
        self.base_url = check_base_url(base_url)
        if token_url is not None and token_url.rstrip("/") != self.base_url + "/oauth2/v1/token":
            raise ConfigError("the Okta SDK gets tokens only from {base_url}/oauth2/v1/token")
        if page_size < 1 or concurrency < 1 or max_retries < 0:
            raise ConfigError("page_size and concurrency must be >= 1, max_retries >= 0")
        if time_budget <= 0 or request_timeout <= 0 or cursor_overlap < 0:
            raise ConfigError("time_budget and request_timeout must be > 0 seconds")
        self.group_types = tuple(group_types)
        if not self.group_types or not set(self.group_types) <= GROUP_TYPES:
            raise ConfigError(f"group_types must be a non-empty subset of {sorted(GROUP_TYPES)}")
        creds = Credentials(token=token, client_id=client_id, private_key=private_key,
                            kid=kid, **({"scopes": tuple(scopes)} if scopes else {}))
        self.page_size, self.concurrency = page_size, concurrency
        self.time_budget, self.group_search, self.cursor_overlap = (
            time_budget, group_search, cursor_overlap)
        self.api = OktaApi(base_url=self.base_url, credentials=creds,
                           request_timeout=request_timeout, max_retries=max_retries,
                           connections=concurrency + 2)

    def _reader(self, deadline: Deadline, progress: ProgressCallback | None) -> SnapshotReader:
        return SnapshotReader(self.api, self.directory, page_size=self.page_size,
                              concurrency=self.concurrency, group_types=self.group_types,
                              group_search=self.group_search, deadline=deadline,
                              progress=progress, overlap=self.cursor_overlap)

    async def snapshot(self, *, cursor: str | None = None,
                       progress: ProgressCallback | None = None) -> Snapshot:
        breaker = Breaker(self.max_connection_failures)
        with breaker_scope(breaker):
            snap = await self._snapshot(cursor, progress)
        record(snap, breaker)
        return snap

    async def _snapshot(self, cursor: str | None, progress: ProgressCallback | None) -> Snapshot:
        deadline = Deadline(self.time_budget)
        self.api.meter.api_calls = self.api.meter.throttles = 0
        note = None
        if cursor is not None:
            since = parse_cursor(cursor)
            if since is None:
                log.warning("okta %s: unusable cursor, reading in full", self.directory)
            else:
                try:
                    return await self._reader(deadline, progress).delta(since, cursor)
                except LogUnreadable as exc:
                    log.warning("okta %s: %s", self.directory, exc)
                    note = str(exc)
                except CursorExpired as exc:
                    log.info("okta %s: cursor refused (%s), reading in full", self.directory, exc)
                    note = f"the saved cursor could not be used ({exc}); this run read in full"
        snap = await self._reader(deadline, progress).full()
        if note is not None:
            snap.notes.append(note)
        return snap

    async def user_groups(self, user: str) -> UserGroups:
        """The user's groups of the configured types (Okta groups are flat: direct = all).

        ``/api/v1/users/{id}/groups`` lists every group the user is a member of, of any type
        (filtered here to `group_types`, as snapshots are): the result reports every group
        (`UserGroups.complete`, nothing `unseen`)."""
        deadline = Deadline(self.time_budget)
        meter = self.api.meter
        meter.api_calls = meter.throttles = 0
        found = await self._find_user(user, deadline)
        groups: list[SnapshotGroup] = []
        pages = 0
        if found is not None:
            url = self.api.url("/api/v1/users/{id}/groups", {"limit": 200},
                               {"id": found.external_id})
            async for items in iterate(self.api, url, what="the user's groups",
                                       deadline=deadline):
                pages += 1
                groups += [to_group(g) for g in items if g.get("type") in self.group_types]
        out = UserGroups(self.directory, found, tuple(groups))
        out.stats.api_calls, out.stats.throttles, out.stats.pages = (
            meter.api_calls, meter.throttles, pages)
        return out

    async def _find_user(self, key: str, deadline: Deadline) -> SnapshotUser | None:
        """By Okta id or login (`/users/{id}` takes both), else by primary email."""
        url = self.api.url("/api/v1/users/{id}", None, {"id": key})
        try:
            page = await self.api.get(url, what="the user", deadline=deadline)
        except NotFoundError:
            page = None
        if page is not None:
            try:
                return to_user(orjson.loads(page.body))
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                raise BadDataError("the user: not an Okta user object") from exc
        if "@" not in key:
            return None
        expr = f"profile.email eq {quote_value(key)}"
        url = self.api.url("/api/v1/users", {"filter": expr, "limit": 2})
        async for items in iterate(self.api, url, what="user by email", deadline=deadline):
            if items:
                return to_user(items[0])
            break
        return None

    async def aclose(self) -> None:
        await self.api.aclose()
