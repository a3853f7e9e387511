"""Building a `Snapshot` from Okta: the full read and the incremental (delta) read.

Full read: the group list (filtered by type) and the user list (every status) are paged
concurrently; each group's member list (`/groups/{id}/users`, direct members: Okta has no nested
groups) is read as soon as its group arrives, at most `concurrency` at a time. Only member ids
are kept from the member pages, interned so that each user id is one str object across the
user list and every member set (about 70 MB less at 1M memberships, ~1 s more CPU).

Delta read from a cursor (an ISO timestamp of Okta's own clock):

- groups whose `lastUpdated` or `lastMembershipUpdated` is after the cursor, each with its
  complete member list;
- users whose `lastUpdated` is after the cursor (status changes included);
- deletions from the System Log (`user.lifecycle.delete.initiated`, `group.lifecycle.delete`)
  between the cursor and the read's start: list filters cannot see a deleted object, and
  listing every id would not say which ids existed before (the cursor carries no id set).
  The System Log keeps 90 days, so an older cursor gets a full read; so does any answer that
  is not the log (403 a token without `okta.logs.read`, 404 logs not available, 400 a refused
  window, 5xx after retries, an unparsable page): `LogUnreadable`, which the connector turns
  into a full read and a note on the snapshot.

The new cursor is Okta's `Date` at the first answer minus `overlap` seconds, so that a change
written while the read ran is read again next time (reading a change twice is harmless; missing
one is not). An incomplete snapshot carries no new cursor for a full read, and the old cursor
for a delta read, so the next run covers the same window again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from sys import intern
from typing import Any

from connectors.base import (
    AuthError,
    CircuitOpen,
    ConfigError,
    ConnectorError,
    CursorExpired,
    ProgressCallback,
)
from connectors.breaker import died_mid_read
from connectors.budget import Deadline
from connectors.okta.client import OktaApi, Page
from connectors.okta.paging import iterate
from connectors.okta.reader import (
    DELETE_EVENTS,
    all_statuses_filter,
    any_of,
    okta_time,
    quote_value,
    to_group,
    to_user,
)
from syncd.reconcile.snapshot import Snapshot

USERS_MAX, GROUPS_MAX, MEMBERS_MAX, LOGS_MAX = 200, 10000, 10000, 1000
LOG_RETENTION_S = 90 * 86400.0
FATAL = (AuthError, ConfigError)


class LogUnreadable(CursorExpired):
    """The System Log could not be read: the delta cannot see deletions; read in full."""


class SnapshotReader:
    """One snapshot read; not reusable. `page_size` is capped per endpoint at Okta's maximum."""

    def __init__(self, api: OktaApi, directory: str, *, page_size: int, concurrency: int,
                 group_types: tuple[str, ...], group_search: str | None, deadline: Deadline,
                 progress: ProgressCallback | None, overlap: float) -> None:
        self.api, self.deadline = api, deadline
        self.page_size, self.group_types, self.group_search = page_size, group_types, group_search
        self.sem = asyncio.Semaphore(concurrency)
        self.progress = progress or (lambda phase, n: None)
        self.overlap = overlap
        self.snap = Snapshot(directory)
        self.server_start: float | None = None
        self.counts = {"users": 0, "groups": 0, "members": 0}
        self._members: dict[str, set[str]] = {}
        self._groups: dict[str, dict[str, Any]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # -- public

    async def full(self) -> Snapshot:
        self.snap.mode = "full"
        await self._run(self._groups_stream(None), self._users_stream(None))
        return self._finish(None)

    async def delta(self, since: float, cursor: str) -> Snapshot:
        """Raises `CursorExpired` if Okta refuses the time window (caller reads in full)."""
        if time.time() - since > LOG_RETENTION_S:
            raise CursorExpired("cursor older than the System Log's 90-day retention")
        self.snap.mode = "delta"
        stamp = quote_value(okta_time(since))
        # the groups request goes first, alone: a refused window is found before anything else
        await self._run(self._groups_stream(stamp))
        await self._run(self._users_stream(stamp), self._deletions(since))
        return self._finish(cursor)

    # -- streams

    async def _run(self, *streams: Coroutine[Any, Any, None]) -> None:
        results = list(await asyncio.gather(*streams, return_exceptions=True))
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            for t in self._tasks:
                t.cancel()
        results += await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for r in failed + results:
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
                raise r

    def _on_page(self, page: Page) -> None:
        self.snap.stats.pages += 1
        if self.server_start is None:
            self.server_start = page.server_time or time.time()

    async def _groups_stream(self, stamp: str | None) -> None:
        expr = f"({any_of('type', self.group_types)})"
        if stamp is not None:
            expr += f" and (lastUpdated gt {stamp} or lastMembershipUpdated gt {stamp})"
        params: dict[str, Any] = {"limit": min(self.page_size, GROUPS_MAX)}
        if self.group_search:
            params["search"] = f"{expr} and ({self.group_search})"
        else:
            params["filter"] = expr
        url = self.api.url("/api/v1/groups", params)
        await self._list("groups", url, self._add_groups, window=stamp is not None)

    def _add_groups(self, items: list[dict[str, Any]]) -> None:
        for g in items:
            gid = g["id"]
            self._groups[gid] = g
            self._members[gid] = set()
            self._tasks.append(asyncio.create_task(self._members_of(gid)))
        self.counts["groups"] += len(items)
        self.progress("groups", self.counts["groups"])

    async def _users_stream(self, stamp: str | None) -> None:
        expr = all_statuses_filter() if stamp is None else f"lastUpdated gt {stamp}"
        url = self.api.url("/api/v1/users",
                           {"filter": expr, "limit": min(self.page_size, USERS_MAX)})
        await self._list("users", url, self._add_users, window=stamp is not None)

    def _add_users(self, items: list[dict[str, Any]]) -> None:
        users = self.snap.users
        for obj in items:
            obj["id"] = intern(obj["id"])  # one str per id across users and member lists
            u = to_user(obj)
            users[u.external_id] = u
        self.counts["users"] += len(items)
        self.progress("users", self.counts["users"])

    async def _members_of(self, gid: str) -> None:
        url = self.api.url("/api/v1/groups/{id}/users",
                           {"limit": min(self.page_size, MEMBERS_MAX)}, {"id": gid})
        members = self._members[gid]
        async with self.sem:
            def add(items: list[dict[str, Any]]) -> None:
                members.update(map(intern, [obj["id"] for obj in items]))
                self.counts["members"] += len(items)
                self.progress("members", self.counts["members"])

            await self._list(f"members of group {gid}", url, add, first_fatal=False)

    async def _deletions(self, since: float) -> None:
        # `until` makes this a bounded query (without it Okta polls: `next` never ends). Events
        # after it are covered by the next delta, which starts at this read's start - overlap.
        until = (self.server_start or time.time()) + self.overlap + 2
        params = {"since": okta_time(since), "until": okta_time(until),
                  "filter": any_of("eventType", DELETE_EVENTS), "limit": LOGS_MAX,
                  "sortOrder": "ASCENDING"}
        url = self.api.url("/api/v1/logs", params)
        found_users: set[str] = set()
        found_groups: set[str] = set()
        try:
            async for events in iterate(self.api, url, what="system log deletions",
                                        deadline=self.deadline, window=True, stop_on_empty=True,
                                        on_page=self._on_page):
                for e in events:
                    kind = e["eventType"]
                    for t in e.get("target") or ():
                        if t.get("type") == "User" and kind.startswith("user."):
                            found_users.add(t["id"])
                        elif t.get("type") == "UserGroup" and kind.startswith("group."):
                            found_groups.add(t["id"])
        except CircuitOpen as exc:
            if not died_mid_read(exc, self.snap.stats.pages):
                raise
            self.snap.complete = False  # deletions unknown: the connector records why
            return
        except ConfigError:
            raise
        except (ConnectorError, KeyError, TypeError, AttributeError) as exc:
            # Any answer that is not the log (403 no okta.logs.read, 404 logs not available to
            # this org, 400 a window refused, 5xx after retries, an unparsable page): deletions
            # cannot be seen, so the caller reads in full. Bad credentials fail that full
            # read's first page.
            why = str(exc) if isinstance(exc, ConnectorError) else f"an unexpected event ({exc!r})"
            raise LogUnreadable(f"the Okta System Log could not be read ({why}); deletions "
                                "cannot be seen incrementally, so this run read everything "
                                "in full") from exc
        self.snap.removed_users |= found_users
        self.snap.removed_groups |= found_groups

    async def _list(self, what: str, url: str, sink: Callable[[list[Any]], None], *,
                    window: bool = False, first_fatal: bool = True,
                    stop_on_empty: bool = False) -> None:
        """Page through one list into `sink`. Failure of the first page raises (the read means
        nothing without it) unless `first_fatal` is False, or the IdP stopped answering after
        other pages were read (the read is then cut short, not meaningless); later failures,
        and any non-fatal failure of a member list, mark the snapshot incomplete and stop only
        this list."""
        first = True
        try:
            async for items in iterate(self.api, url, what=what, deadline=self.deadline,
                                       window=window, stop_on_empty=stop_on_empty,
                                       on_page=self._on_page):
                first = False
                sink(items)
        except FATAL:
            raise
        except CursorExpired:
            raise
        except ConnectorError as exc:
            if first and first_fatal and not died_mid_read(exc, self.snap.stats.pages):
                raise
            if isinstance(exc, CircuitOpen):  # recorded once by the connector
                self.snap.complete = False
            else:
                self.snap.mark_incomplete(f"{what}: {exc}")
        except KeyError as exc:
            self.snap.mark_incomplete(f"{what}: an object without {exc}")

    # -- result

    def _finish(self, old_cursor: str | None) -> Snapshot:
        snap = self.snap
        for gid, obj in self._groups.items():
            snap.groups[gid] = to_group(obj, self._members.pop(gid))  # free each set as we go
        snap.removed_users -= snap.users.keys()
        snap.removed_groups -= snap.groups.keys()
        if snap.complete:
            start = self.server_start or time.time()
            snap.cursor = okta_time(start - self.overlap)
        else:
            snap.cursor = old_cursor
        m = self.api.meter
        snap.stats.api_calls, snap.stats.throttles = m.api_calls, m.throttles
        return snap
