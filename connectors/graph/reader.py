"""Reading a directory from Graph into `Snapshot` values (full reads, shared helpers, login path).

Invariants:

- Users come from `/users` with `$select=USER_SELECT`; every user of the tenant is in a full
  snapshot, members or not. `user_name` is the userPrincipalName, `active` is accountEnabled.
- A group's `member_ids` come from `/groups/{id}/transitiveMembers?$select=id`, keeping only
  objects whose `@odata.type` is `#microsoft.graph.user` (nested groups, service principals,
  devices and contacts are dropped). Member reads run at most `concurrency` at a time.
- In a full read, the first member pages of up to `batch_size` groups are read in one JSON
  batch (`connectors.graph.batch`; a batch holds one of the `concurrency` slots); later pages
  of a group follow its `@odata.nextLink` with direct GETs. A server without a usable `$batch`
  is read one group at a time for the rest of the snapshot, with the same results. Delta
  rounds and the login path read one group at a time.
- A failed read after retries marks the snapshot incomplete and the rest continues; only
  auth/config errors and the failure of the first page of users or groups raise.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from sys import intern
from typing import Any, Literal
from urllib.parse import quote

from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.request_information import RequestInformation

from connectors.base import (
    AuthError,
    BudgetExceeded,
    CircuitOpen,
    ConfigError,
    ConnectorError,
    NotFoundError,
    ProgressCallback,
)
from connectors.breaker import died_mid_read
from connectors.graph.batch import Batcher, BatchUnsupported, Outcome
from connectors.graph.client import GraphApi
from connectors.graph.paging import NextLinkPaginator, iter_pages, page_value, url_request
from syncd.reconcile.snapshot import Snapshot, SnapshotGroup, SnapshotUser, UserGroups

USER_SELECT = ["id", "userPrincipalName", "mail", "displayName", "givenName", "surname",
               "accountEnabled"]
GROUP_SELECT = ["id", "displayName", "description", "securityEnabled"]
USER_TYPE = "#microsoft.graph.user"
GROUP_TYPE = "#microsoft.graph.group"
GroupSource = Literal["all", "security", "app_assigned"]
#: problems recorded one by one before the rest are only counted
MAX_PROBLEMS = 50

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReadSettings:
    """Scope and limits of one reader (validated by the connector)."""

    directory: str
    group_source: GroupSource
    service_principal_id: str | None
    page_size: int  # objects per page, 1..999
    concurrency: int  # member reads at once
    time_budget: float  # seconds per snapshot or user_groups call
    batch_size: int = 1  # groups whose first member page is read in one $batch, 1..20
    max_retries: int = 3  # retries per request (of an inner batch request too)
    retry_delay: float = 0.0  # seconds kiota adds to each backoff without Retry-After


def request(builder: Any, **query: Any) -> RequestInformation:
    """`builder.to_get_request_information` with the builder's own query-parameter class."""
    qp_cls = getattr(type(builder), f"{type(builder).__name__}GetQueryParameters")
    return builder.to_get_request_information(RequestConfiguration(query_parameters=qp_cls(**query)))


def absolute_url(api: GraphApi, info: RequestInformation) -> str:
    """The absolute URL of `info` (the SDK leaves `{+baseurl}` empty until it sends)."""
    url = info.url
    return url if url.startswith(("https://", "http://")) else api.base_url + url


def to_user(obj: dict[str, Any]) -> SnapshotUser | None:
    """A Graph user object as a `SnapshotUser`; None if it lacks an id or a sign-in name."""
    uid, upn = obj.get("id"), obj.get("userPrincipalName")
    if not isinstance(uid, str) or not isinstance(upn, str) or not uid or not upn:
        return None
    return SnapshotUser(external_id=intern(uid), user_name=upn,
                        active=obj.get("accountEnabled") is not False, email=obj.get("mail"),
                        display_name=obj.get("displayName"), given_name=obj.get("givenName"),
                        family_name=obj.get("surname"))


#: the characters `ParametersNameDecodingHandler` decodes in query parameter names
_NAME_CODES = {"%24": "$", "%2E": ".", "%2e": ".", "%2D": "-", "%2d": "-", "%7E": "~", "%7e": "~"}


def decode_names(url: str) -> str:
    """`url` with its query parameter *names* decoded as kiota's `ParametersNameDecodingHandler`
    does (``%24select`` → ``$select``); values are left as they are."""
    base, sep, query = url.partition("?")
    if not sep or "%" not in query:
        return url
    parts = []
    for part in query.split("&"):
        name, eq, value = part.partition("=")
        for code, char in _NAME_CODES.items():
            name = name.replace(code, char)
        parts.append(f"{name}{eq}{value}")
    return f"{base}?{'&'.join(parts)}"


def in_scope(obj: dict[str, Any], source: GroupSource, assigned: set[str] | None) -> bool:
    """Whether a Graph group object is in the configured group scope."""
    if source == "security":
        return obj.get("securityEnabled") is True
    if source == "app_assigned":
        return assigned is not None and obj.get("id") in assigned
    return True


def cut_short(snap: Snapshot, what: str, exc: ConnectorError) -> None:
    """Mark `snap` incomplete for a failed read; an open breaker's problem is recorded once, by
    the connector, not once per read it stopped."""
    if isinstance(exc, CircuitOpen):
        snap.complete = False
    else:
        snap.mark_incomplete(f"{what}: {exc}")


class Problems:
    """Collects failed reads into a snapshot: each one marks it incomplete, budget exhaustion
    is reported once with a count, and past `MAX_PROBLEMS` entries only a count is kept."""

    def __init__(self, snap: Snapshot, budget: float) -> None:
        self.snap, self.budget = snap, budget
        self.skipped = 0
        self.extra = 0

    def add(self, what: str, exc: ConnectorError) -> None:
        """Record a failure; re-raise errors that make the whole read meaningless."""
        if isinstance(exc, AuthError | ConfigError):
            raise exc
        if isinstance(exc, CircuitOpen):  # the connector records the breaker's one problem
            self.snap.complete = False
        elif isinstance(exc, BudgetExceeded):
            self.skipped += 1
            self.snap.complete = False
        elif len(self.snap.problems) < MAX_PROBLEMS:
            self.snap.mark_incomplete(f"{what}: {exc}")
        else:
            self.extra += 1
            self.snap.complete = False

    def finish(self) -> None:
        if self.skipped:
            self.snap.mark_incomplete(f"time budget of {self.budget:g} s exhausted; "
                                      f"{self.skipped} reads not done")
        if self.extra:
            self.snap.mark_incomplete(f"{self.extra} more reads failed")


async def run_all(coros: list[Coroutine[Any, Any, None]]) -> None:
    """Run coroutines concurrently; on the first exception cancel the rest and raise it."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class MemberBatches:
    """The batcher of one full read, and whether the server still looks able to batch."""

    def __init__(self, api: GraphApi, settings: ReadSettings) -> None:
        self.batcher = Batcher(api, size=settings.batch_size, max_retries=settings.max_retries,
                               retry_delay=settings.retry_delay)
        self.usable = True
        self.directory = settings.directory

    def refused(self, exc: BatchUnsupported) -> None:
        """The server has no usable `$batch`: read one group at a time from now on (said once)."""
        if self.usable:
            self.usable = False
            log.warning("graph %s: $batch refused (%s); reading group members one group at a time",
                        self.directory, exc)


class GraphReader:
    """Full snapshots and the login path over one `GraphApi`."""

    def __init__(self, api: GraphApi, settings: ReadSettings) -> None:
        self.api, self.s = api, settings
        self._members_template: list[str] | None = None

    @property
    def client(self) -> Any:
        return self.api.client

    def _members_url(self, gid: str) -> str:
        """The first-page URL of a group's transitive members.

        Expanded by the SDK's URL template once per reader for a sentinel id, then reused with
        the group id put in its place: template expansion costs more CPU than the rest of the
        request (three expansions per request, ~0.3 ms each). Its query parameter names are
        decoded here, once (`decode_names`), so that the SDK's decoding middleware finds nothing
        left to rewrite in each of these requests."""
        if self._members_template is None:
            sentinel = "00000000-0000-0000-0000-5e471ae15e47"
            builder = self.client.groups.by_group_id(sentinel).transitive_members
            url = absolute_url(self.api, request(builder, select=["id"], top=self.s.page_size))
            self._members_template = decode_names(url).split(sentinel)
        head, tail = self._members_template[0], self._members_template[1]
        return f"{head}{quote(gid, safe='')}{tail}"

    # -- pieces -------------------------------------------------------------------------------

    async def read_users(self, snap: Snapshot, progress: ProgressCallback | None,
                         deadline: float) -> None:
        """Every user into `snap.users`; the first page failing raises."""
        users = self.client.users
        first = request(users, select=USER_SELECT, top=self.s.page_size)
        pages = NextLinkPaginator()
        count = 0
        try:
            async for value in iter_pages(self.api, first, pages, what="GET /users", deadline=deadline):
                for obj in value:
                    user = to_user(obj)
                    if user is not None:
                        snap.users[user.external_id] = user
                count += len(value)
                if progress:
                    progress("users", count)
        except ConnectorError as exc:
            first = pages.pages == 0 and not died_mid_read(exc, snap.stats.pages)
            if first or isinstance(exc, AuthError | ConfigError):
                raise
            cut_short(snap, f"GET /users page {pages.pages + 1}", exc)

    async def assigned_group_ids(self, deadline: float) -> set[str]:
        """Ids of groups assigned to the app's service principal (raises on any failure:
        without the full list the scope itself is unknown)."""
        sp = self.client.service_principals.by_service_principal_id(self.s.service_principal_id)
        builder = sp.app_role_assigned_to
        first = request(builder, select=["principalId", "principalType"], top=self.s.page_size)
        out: set[str] = set()
        async for value in iter_pages(self.api, first, NextLinkPaginator(),
                                      what="GET /servicePrincipals/{id}/appRoleAssignedTo",
                                      deadline=deadline):
            out.update(a["principalId"] for a in value if a.get("principalType") == "Group")
        return out

    async def read_members(self, group: dict[str, Any], snap: Snapshot, sem: asyncio.Semaphore,
                           problems: Problems, deadline: float,
                           on_page: Callable[[int], None] | None = None,
                           first: Outcome | None = None) -> None:
        """One group's transitive user members into `snap.groups` (partial on failure).

        `first` is the group's first page (or the error reading it ended with) when a batch
        has already read it; the pages after it are read here either way. A group that is gone
        by the time its members are read (404) was deleted meanwhile: it is left out (and, in a
        delta snapshot, listed as removed) without any problem."""
        gid = group["id"]
        what = f"GET /groups/{gid}/transitiveMembers"
        members: set[str] = set()

        def take(value: list[dict[str, Any]]) -> None:
            members.update(map(intern, [o["id"] for o in value if o.get("@odata.type") == USER_TYPE]))
            if on_page:
                on_page(len(value))

        pages = NextLinkPaginator()
        try:
            if isinstance(first, ConnectorError):
                raise first
            if first is not None:
                value = page_value(first, what)
                pages.update_state(first)
                take(value)
            if first is None or pages.has_next_page():
                async with sem:
                    info = url_request(self._members_url(gid)) if first is None else pages.next_request()
                    async for value in iter_pages(self.api, info, pages, what=what, deadline=deadline):
                        take(value)
        except NotFoundError:
            if snap.mode == "delta":
                snap.removed_groups.add(gid)
            return
        except ConnectorError as exc:
            problems.add(f"members of group {gid}", exc)
        snap.groups[gid] = SnapshotGroup(external_id=gid, display_name=group.get("displayName") or gid,
                                         member_ids=frozenset(members),
                                         description=group.get("description"))

    async def read_member_batch(self, groups: list[dict[str, Any]], snap: Snapshot,
                                sem: asyncio.Semaphore, problems: Problems, deadline: float,
                                batches: MemberBatches,
                                on_page: Callable[[int], None] | None = None) -> None:
        """The members of `groups` (at most `batch_size`), their first pages in one batch; one
        group at a time once the server turned out to have no usable `$batch`."""
        first: dict[str, Outcome] | None = None
        if batches.usable:
            urls = {g["id"]: self._members_url(g["id"]) for g in groups}
            async with sem:
                try:
                    first = await batches.batcher.get_many(
                        urls, what=lambda gid: f"GET /groups/{gid}/transitiveMembers", deadline=deadline)
                except BatchUnsupported as exc:
                    batches.refused(exc)
        await asyncio.gather(*(self.read_members(g, snap, sem, problems, deadline, on_page,
                                                 None if first is None else first[g["id"]])
                               for g in groups))

    # -- full snapshot --------------------------------------------------------------------------

    async def read_groups(self, snap: Snapshot, progress: ProgressCallback | None,
                          deadline: float, problems: Problems) -> None:
        """Every in-scope group with its transitive members; member reads start as soon as each
        page of groups arrives. The first page of groups failing raises."""
        assigned = await self.assigned_group_ids(deadline) if self.s.group_source == "app_assigned" else None
        groups = self.client.groups
        query: dict[str, Any] = {"select": GROUP_SELECT, "top": self.s.page_size}
        if self.s.group_source == "security":
            query["filter"] = "securityEnabled eq true"
        pages = NextLinkPaginator()
        sem = asyncio.Semaphore(self.s.concurrency)
        tasks: list[asyncio.Future[None]] = []
        seen = 0
        read = [0]

        def on_page(n: int) -> None:
            read[0] += n
            if progress:
                progress("members", read[0])

        batches = MemberBatches(self.api, self.s) if self.s.batch_size > 1 else None
        chunk: list[dict[str, Any]] = []

        def flush() -> None:
            if chunk:
                assert batches is not None
                tasks.append(asyncio.ensure_future(self.read_member_batch(
                    list(chunk), snap, sem, problems, deadline, batches, on_page)))
                chunk.clear()

        try:
            try:
                async for value in iter_pages(self.api, request(groups, **query), pages,
                                              what="GET /groups", deadline=deadline):
                    for obj in value:
                        gid = obj.get("id")
                        if not isinstance(gid, str) or not in_scope(obj, self.s.group_source, assigned):
                            continue
                        if batches is None:
                            tasks.append(asyncio.ensure_future(
                                self.read_members(obj, snap, sem, problems, deadline, on_page)))
                        else:
                            chunk.append(obj)
                            if len(chunk) == self.s.batch_size:
                                flush()
                    seen += len(value)
                    if progress:
                        progress("groups", seen)
            except ConnectorError as exc:
                first = pages.pages == 0 and not died_mid_read(exc, snap.stats.pages)
                if first or isinstance(exc, AuthError | ConfigError):
                    raise
                cut_short(snap, f"GET /groups page {pages.pages + 1}", exc)
            flush()
            await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def full(self, snap: Snapshot, progress: ProgressCallback | None, deadline: float,
                   latest: Callable[[], Awaitable[str | None]]) -> None:
        """A full snapshot into `snap`; `latest()` yields the cursor, taken before the read so
        that changes made during the read are delivered again by the next delta."""
        snap.mode = "full"
        cursor = await latest()
        problems = Problems(snap, self.s.time_budget)
        await run_all([self.read_users(snap, progress, deadline),
                       self.read_groups(snap, progress, deadline, problems)])
        problems.finish()
        # after an incomplete full read only another full read can fill the gaps
        snap.cursor = cursor if snap.complete else None

    # -- login path -------------------------------------------------------------------------------

    async def find_user(self, key: str, deadline: float) -> dict[str, Any] | None:
        """The user by id or userPrincipalName, else by mail; None if Graph does not know it."""
        try:
            return await self.api.get_json(
                request(self.client.users.by_user_id(key), select=USER_SELECT),
                what="GET /users/{key}", deadline=deadline)
        except NotFoundError:
            if "@" not in key:
                return None
        quoted = key.replace("'", "''")
        page = await self.api.get_json(
            request(self.client.users, select=USER_SELECT, filter=f"mail eq '{quoted}'", top=1),
            what="GET /users?$filter=mail", deadline=deadline)
        found = page.get("value") or []
        return found[0] if found else None

    async def user_groups(self, key: str, result: Callable[..., UserGroups],
                          deadline: float) -> UserGroups:
        """One user's transitive groups in scope (directory roles and units dropped)."""
        obj = await self.find_user(key, deadline)
        user = to_user(obj) if obj else None
        if user is None:
            return result(user=None, groups=())
        assigned = await self.assigned_group_ids(deadline) if self.s.group_source == "app_assigned" else None
        builder = self.client.users.by_user_id(user.external_id).transitive_member_of
        first = request(builder, select=GROUP_SELECT, top=self.s.page_size)
        groups: dict[str, SnapshotGroup] = {}
        async for value in iter_pages(self.api, first, NextLinkPaginator(),
                                      what="GET /users/{id}/transitiveMemberOf", deadline=deadline):
            for o in value:
                if o.get("@odata.type") == GROUP_TYPE and in_scope(o, self.s.group_source, assigned):
                    groups[o["id"]] = SnapshotGroup(external_id=o["id"],
                                                    display_name=o.get("displayName") or o["id"],
                                                    description=o.get("description"))
        return result(user=user, groups=tuple(sorted(groups.values(), key=lambda g: g.external_id)))
