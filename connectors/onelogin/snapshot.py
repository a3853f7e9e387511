"""Building a `Snapshot` from OneLogin: the full read, and the cursor paging it uses.

OneLogin has no incremental read of role membership (no delta token, no membership change
feed), so every snapshot is full; a saved cursor is ignored.

Teams (`teams` setting):

- `roles` (default): `GET /api/2/roles`, and for each role `GET /api/2/roles/{id}/users` (the
  users assigned to it), read as soon as the role arrives, at most `concurrency` at a time,
  `BATCH` roles to one worker-thread hop (the SDK is blocking; one hop per request cost more
  CPU than the requests). A list that fails in a batch is read again on its own through the
  retrying path. Roles do not nest: a role's members are its direct members.
- `groups`: `GET /api/1/groups` (API v2 has no groups endpoint); a OneLogin user belongs to at
  most one group, its `group_id`, so membership comes from the user list itself.
- `both`: both sets of teams (ids `role:<id>` and `group:<id>` never collide).

Paging: v2 lists send the next page's cursor in the `After-Cursor` response header (absent or
empty on the last page; `Total-Count`, `Total-Pages`, `Current-Page` are informational) and
take it back as the `cursor` query parameter with the same other parameters. The v1 groups
list carries it in the body (`pagination.after_cursor`) and takes it as `after_cursor`.
A cursor repeated by the server stops the list as bad data (a loop would spin forever).

User ids are shared: `_ids` maps each numeric id to one str, used by the user list and every
member set (one str object per user, and no str(int) per membership).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from sys import intern
from typing import Any

import orjson

from connectors.base import (
    AuthError,
    BadDataError,
    CircuitOpen,
    ConfigError,
    ConnectorError,
    ProgressCallback,
)
from connectors.breaker import current as current_breaker
from connectors.breaker import died_mid_read
from connectors.budget import Deadline
from connectors.onelogin.client import OneLoginApi
from connectors.onelogin.reader import (
    after_cursor,
    group_id,
    to_group,
    to_role,
    to_user,
    user_id,
    v1_after_cursor,
)
from syncd.reconcile.snapshot import Snapshot

#: Page size caps: users and role members 100 (the SDK's OpenAPI spec, "max 100"), roles 650
#: (API reference: "Max page limit is 650"); v1 groups are 50 a page whatever is asked. The
#: server may send fewer: paging follows `After-Cursor`, never counts.
USERS_MAX, ROLES_MAX, MEMBERS_MAX = 100, 650, 100
FATAL = (AuthError, ConfigError)


def _parse(body: str, what: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadDataError(f"{what}: the answer is not valid JSON") from exc


async def iterate_v2(
    api: OneLoginApi,
    path: str,
    *,
    what: str,
    deadline: Deadline,
    limit: int,
    path_params: dict[str, Any] | None = None,
    extra: list[tuple[str, Any]] | None = None,
) -> AsyncIterator[list[dict[str, Any]]]:
    """The items of each page of a v2 list, following `After-Cursor`; `limit` is sent as is
    (callers cap it per endpoint)."""
    base = [("limit", limit), *(extra or [])]
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        params = base + ([("cursor", cursor)] if cursor else [])
        page = await api.get(path, what=what, deadline=deadline, params=params, path_params=path_params)
        items = _parse(page.body, what)
        if not isinstance(items, list):
            raise BadDataError(f"{what}: expected a JSON array, got {type(items).__name__}")
        yield items
        cursor = after_cursor(page.headers)
        if cursor is None or not items:
            return
        if cursor in seen:
            raise BadDataError(f"{what}: OneLogin sent the same After-Cursor twice")
        seen.add(cursor)


async def iterate_v1(
    api: OneLoginApi, path: str, *, what: str, deadline: Deadline
) -> AsyncIterator[list[dict[str, Any]]]:
    """The `data` of each page of a v1 list, following `pagination.after_cursor`."""
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        params = [("after_cursor", cursor)] if cursor else []
        page = await api.get(path, what=what, deadline=deadline, params=params)
        doc = _parse(page.body, what)
        if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
            raise BadDataError(f"{what}: expected a v1 envelope with a data array")
        yield doc["data"]
        cursor = v1_after_cursor(doc)
        if cursor is None or not doc["data"]:
            return
        if cursor in seen:
            raise BadDataError(f"{what}: OneLogin sent the same after_cursor twice")
        seen.add(cursor)


#: role member lists read one after another in one worker-thread hop (see `member_ids_sync`)
BATCH = 16


def member_ids_sync(
    api: OneLoginApi, nums: list[Any], *, limit: int, deadline: Deadline, breaker: Any
) -> tuple[dict[Any, list[Any]], list[Any], int]:
    """The fast path for role member lists, in a worker thread: each role's pages read once,
    without retries, ids only. Returns ({role: member ids} for the roles read in full, the
    roles that failed in any way, pages read). Failed roles are read again by the caller
    through the retrying path (`OneLoginApi.get`), which also reports their errors; a role
    half read here counts as failed, its pages are dropped."""
    out: dict[Any, list[Any]] = {}
    pages = 0
    for i, num in enumerate(nums):
        ids: list[Any] = []
        cursor: str | None = None
        seen: set[str] = set()
        try:
            while True:
                params = [("limit", limit), *([("cursor", cursor)] if cursor else [])]
                page = api._get_sync(
                    "/api/2/roles/{role_id}/users",
                    params,
                    {"role_id": num},
                    f"users of role {num}",
                    breaker,
                    deadline.remaining(),
                )
                items = orjson.loads(page.body)
                ids += [obj["id"] for obj in items]
                pages += 1
                cursor = after_cursor(page.headers)
                if cursor is None or not items or cursor in seen:
                    break
                seen.add(cursor)
            if cursor is not None and cursor in seen:
                raise BadDataError("repeated cursor")
        except Exception:
            return out, list(nums[i:]), pages
        out[num] = ids
    return out, [], pages


class SnapshotReader:
    """One full snapshot read; not reusable."""

    def __init__(
        self,
        api: OneLoginApi,
        directory: str,
        *,
        page_size: int | None,
        concurrency: int,
        teams: str,
        deadline: Deadline,
        progress: ProgressCallback | None,
    ) -> None:
        self.api, self.deadline, self.page_size = api, deadline, page_size
        self.roles, self.groups = teams in ("roles", "both"), teams in ("groups", "both")
        self.sem = asyncio.Semaphore(concurrency)
        self.progress = progress or (lambda phase, n: None)
        self.snap = Snapshot(directory)
        self.counts = {"users": 0, "roles": 0, "groups": 0, "members": 0}
        self._roles: dict[str, tuple[dict[str, Any], set[str]]] = {}
        self._groups: dict[str, tuple[dict[str, Any], set[str]]] = {}
        self._user_group: dict[str, str] = {}
        self._ids: dict[Any, str] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def _id(self, num: Any) -> str:
        """The one str for OneLogin user id `num` (an int, as OneLogin sends ids)."""
        out = self._ids.get(num)
        if out is None:
            out = self._ids[num] = intern(user_id(num))
        return out

    def _limit(self, cap: int) -> int:
        """The page size to ask for: the endpoint's maximum, or `page_size` if smaller."""
        return cap if self.page_size is None else min(self.page_size, cap)

    async def full(self) -> Snapshot:
        self.snap.mode = "full"
        streams = [self._users()]
        if self.roles:
            streams.append(self._role_list())
        if self.groups:
            streams.append(self._group_list())
        results = list(await asyncio.gather(*streams, return_exceptions=True))
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            for t in self._tasks:
                t.cancel()
        results += await asyncio.gather(*self._tasks, return_exceptions=True)
        for r in failed + results:
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
                raise r
        return self._finish()

    # -- streams

    async def _users(self) -> None:
        users, groups = self.snap.users, self.groups

        def add(items: list[dict[str, Any]]) -> None:
            for obj in items:
                u = to_user(obj)
                uid = self._ids.get(obj["id"]) or self._ids.setdefault(obj["id"], intern(u.external_id))
                users[uid] = u
                if groups and obj.get("group_id") is not None:
                    self._user_group[uid] = group_id(obj["group_id"])
            self.counts["users"] += len(items)
            self.progress("users", self.counts["users"])

        pages = iterate_v2(
            self.api, "/api/2/users", what="users", deadline=self.deadline, limit=self._limit(USERS_MAX)
        )
        await self._list("users", pages, add)

    async def _role_list(self) -> None:
        def add(items: list[dict[str, Any]]) -> None:
            batch: list[tuple[str, Any]] = []
            for obj in items:
                rid = to_role(obj).external_id
                self._roles[rid] = (obj, set())
                batch.append((rid, obj["id"]))
            for i in range(0, len(batch), BATCH):
                self._tasks.append(asyncio.create_task(self._members_batch(batch[i : i + BATCH])))
            self.counts["roles"] += len(items)
            self.progress("roles", self.counts["roles"])

        pages = iterate_v2(
            self.api, "/api/2/roles", what="roles", deadline=self.deadline, limit=self._limit(ROLES_MAX)
        )
        await self._list("roles", pages, add)

    async def _members_batch(self, batch: list[tuple[str, Any]]) -> None:
        """Up to `BATCH` roles' member lists in one thread hop; any that failed there are read
        again one by one through the retrying path."""
        nums = [num for _, num in batch]
        breaker = current_breaker()  # context variables do not reach the worker thread
        async with self.sem:
            got, failed, pages = await self.api.run_blocking(
                lambda: member_ids_sync(
                    self.api, nums, limit=self._limit(MEMBERS_MAX), deadline=self.deadline, breaker=breaker
                )
            )
        self.snap.stats.pages += pages
        ids, new = self._ids, self._id
        for rid, num in batch:
            if num in got:
                got_ids = got[num]
                self._roles[rid][1].update([ids.get(n) or new(n) for n in got_ids])
                self.counts["members"] += len(got_ids)
        self.progress("members", self.counts["members"])
        for rid, num in batch:
            if num in failed:
                await self._members_of(rid, num)

    async def _members_of(self, rid: str, num: Any) -> None:
        members = self._roles[rid][1]
        what = f"users of role {num}"

        def add(items: list[dict[str, Any]]) -> None:
            ids, new = self._ids, self._id
            members.update([ids.get(obj["id"]) or new(obj["id"]) for obj in items])
            self.counts["members"] += len(items)
            self.progress("members", self.counts["members"])

        async with self.sem:
            pages = iterate_v2(
                self.api,
                "/api/2/roles/{role_id}/users",
                what=what,
                deadline=self.deadline,
                limit=self._limit(MEMBERS_MAX),
                path_params={"role_id": num},
            )
            await self._list(what, pages, add, first_fatal=False)

    async def _group_list(self) -> None:
        def add(items: list[dict[str, Any]]) -> None:
            for obj in items:
                self._groups[to_group(obj).external_id] = (obj, set())
            self.counts["groups"] += len(items)
            self.progress("groups", self.counts["groups"])

        await self._list(
            "groups", iterate_v1(self.api, "/api/1/groups", what="groups", deadline=self.deadline), add
        )

    async def _list(
        self,
        what: str,
        pages: AsyncIterator[list[dict[str, Any]]],
        sink: Callable[[list[dict[str, Any]]], None],
        *,
        first_fatal: bool = True,
    ) -> None:
        """Page one list into `sink`. Failure of the first page raises (the read means nothing
        without it) unless `first_fatal` is False or the IdP died after other pages were read
        (an open breaker); later failures mark the snapshot incomplete."""
        first = True
        try:
            async for items in pages:
                first = False
                self.snap.stats.pages += 1
                sink(items)
        except FATAL:
            raise
        except ConnectorError as exc:
            if first and first_fatal and not died_mid_read(exc, self.snap.stats.pages):
                raise
            if isinstance(exc, CircuitOpen):  # recorded once, by the connector
                self.snap.complete = False
            else:
                self.snap.mark_incomplete(f"{what}: {exc}")
        except (KeyError, TypeError, ValueError) as exc:
            self.snap.mark_incomplete(f"{what}: an object without a usable {exc}")

    # -- result

    def _finish(self) -> Snapshot:
        snap = self.snap
        for rid, (obj, members) in self._roles.items():
            snap.groups[rid] = to_role(obj, members)
        if self.groups:
            for uid, gid in self._user_group.items():
                if gid in self._groups:
                    self._groups[gid][1].add(uid)
            for gid, (obj, members) in self._groups.items():
                snap.groups[gid] = to_group(obj, members)
        m = self.api.meter
        snap.stats.api_calls, snap.stats.throttles = m.api_calls, m.throttles
        return snap
