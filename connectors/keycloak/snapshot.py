"""Building a `Snapshot` from a Keycloak realm: the full read.

Keycloak groups form a forest. Since Keycloak 23, `GET /groups` returns the top-level groups
only, with `subGroups` left empty and a `subGroupCount`; each level below is read from
`GET /groups/{id}/children` (paged with `first`/`max`; its default `max` is 10, so it is always
sent). A server older than 23 sends no `subGroupCount` and has no `/children`, but fills
`subGroups` with the whole subtree, which is then used as it comes.
`GET /groups/{id}/members` lists direct members only (paged, `briefRepresentation`), so each
team's members are its own plus those of every group below it (`reader.transitive_members`).

Three streams run concurrently: the top-level group list, the user list (`GET /users`, every
user, disabled ones included, `briefRepresentation=true`), and, as each group arrives, its
member list and (when `subGroupCount` > 0) its children, at most `concurrency`
member/children requests at once. Lists page with `first`/`max` and end at the first short page.

A failed member or children list marks the snapshot incomplete (the subtree's members are
unknown) and the read goes on; the first page of the group or user list failing raises, unless
the IdP stopped answering after other pages were read (the breaker opened: the read is cut
short, not meaningless).
Keycloak has no read cursor here: every read is full (see the connector's docstring).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from sys import intern
from typing import Any
from urllib.parse import quote

from connectors.base import AuthError, CircuitOpen, ConfigError, ConnectorError, ProgressCallback
from connectors.breaker import died_mid_read
from connectors.budget import Deadline
from connectors.keycloak.client import KeycloakApi
from connectors.keycloak.reader import TeamName, parse_list, to_group, to_user, transitive_members
from syncd.reconcile.snapshot import Snapshot

FATAL = (AuthError, ConfigError)


class SnapshotReader:
    """One snapshot read; not reusable. `page_size` is the `max` of every list request."""

    def __init__(
        self,
        api: KeycloakApi,
        directory: str,
        *,
        page_size: int,
        concurrency: int,
        team_name: TeamName,
        deadline: Deadline,
        progress: ProgressCallback | None,
    ) -> None:
        self.api, self.deadline, self.page_size, self.team_name = (api, deadline, page_size, team_name)
        self.sem = asyncio.Semaphore(concurrency)
        self.progress = progress or (lambda phase, n: None)
        self.snap = Snapshot(directory)
        self.counts = {"users": 0, "groups": 0, "members": 0}
        self._groups: dict[str, dict[str, Any]] = {}
        self._children: dict[str, list[str]] = {}
        self._members: dict[str, set[str]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def full(self) -> Snapshot:
        self.snap.mode = "full"
        await self._run(self._top_groups(), self._users())
        return self._finish()

    async def _run(self, *streams: Coroutine[Any, Any, None]) -> None:
        """Run the streams and every group task they (and those tasks) spawn, to the end."""
        results: list[Any] = list(await asyncio.gather(*streams, return_exceptions=True))
        failed = [r for r in results if isinstance(r, BaseException)]
        while self._tasks:
            tasks, self._tasks = self._tasks, []
            if failed:
                for t in tasks:
                    t.cancel()
            done = await asyncio.gather(*tasks, return_exceptions=True)
            failed += [
                r for r in done if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)
            ]
        for r in failed:
            raise r

    # -- streams

    async def _top_groups(self) -> None:
        await self._pages(
            "groups",
            self.api.path("groups"),
            {"briefRepresentation": "true"},
            lambda items: self._add_groups(items, None),
        )

    async def _users(self) -> None:
        await self._pages("users", self.api.path("users"), {"briefRepresentation": "true"}, self._add_users)

    def _add_users(self, items: list[dict[str, Any]]) -> None:
        users = self.snap.users
        for obj in items:
            obj["id"] = intern(obj["id"])  # one str per id across users and member sets
            u = to_user(obj)
            users[u.external_id] = u
        self.counts["users"] += len(items)
        self.progress("users", self.counts["users"])

    def _add_groups(self, items: list[dict[str, Any]], parent: str | None) -> None:
        for g in items:
            gid = g["id"]
            if gid in self._groups:  # a tree has no second path to a group
                continue
            self._groups[gid] = g
            self._members[gid] = set()
            if parent is not None:
                self._children.setdefault(parent, []).append(gid)
            self._tasks.append(asyncio.create_task(self._group(gid, g.get("subGroupCount", 0))))
            if "subGroupCount" not in g and g.get("subGroups"):
                self._add_groups(g["subGroups"], gid)  # Keycloak < 23 sends the whole subtree
        self.counts["groups"] += len(items)
        self.progress("groups", self.counts["groups"])

    async def _group(self, gid: str, sub_count: Any) -> None:
        ident = quote(gid, safe="")
        members = self._members[gid]

        def add_members(items: list[dict[str, Any]]) -> None:
            members.update([intern(obj["id"]) for obj in items])
            self.counts["members"] += len(items)
            self.progress("members", self.counts["members"])

        jobs = [
            self._pages(
                f"members of group {gid}",
                self.api.path(f"groups/{ident}/members"),
                {"briefRepresentation": "true"},
                add_members,
                limited=True,
            )
        ]
        if isinstance(sub_count, int) and sub_count > 0:
            jobs.append(
                self._pages(
                    f"subgroups of group {gid}",
                    self.api.path(f"groups/{ident}/children"),
                    {"briefRepresentation": "true"},
                    lambda items: self._add_groups(items, gid),
                    limited=True,
                )
            )
        await asyncio.gather(*jobs)

    async def _pages(
        self,
        what: str,
        path: str,
        params: dict[str, Any],
        sink: Callable[[list[dict[str, Any]]], None],
        *,
        limited: bool = False,
    ) -> None:
        """Page `first`/`max` through one list into `sink`. The first page of an unlimited
        (top-level) list failing raises; any other failure marks the snapshot incomplete and
        stops this list only. Auth and config errors always raise."""
        first = 0
        try:
            while True:
                query = {**params, "first": first, "max": self.page_size}
                if limited:
                    async with self.sem:
                        body = await self.api.get(path, query, what=what, deadline=self.deadline)
                else:
                    body = await self.api.get(path, query, what=what, deadline=self.deadline)
                self.snap.stats.pages += 1
                items = parse_list(body, what)
                sink(items)
                if len(items) < self.page_size:
                    return
                first += len(items)
        except FATAL:
            raise
        except ConnectorError as exc:
            if first == 0 and not limited and not died_mid_read(exc, self.snap.stats.pages):
                raise
            if isinstance(exc, CircuitOpen):  # recorded once, by the connector
                self.snap.complete = False
            else:
                self.snap.mark_incomplete(f"{what}: {exc}")
        except (KeyError, TypeError) as exc:
            self.snap.mark_incomplete(f"{what}: an item that is not an object with an id ({exc!r})")

    def _finish(self) -> Snapshot:
        snap = self.snap
        expanded = transitive_members(self._children, self._members)
        self._members.clear()
        for gid, obj in self._groups.items():
            snap.groups[gid] = to_group(obj, expanded.pop(gid, frozenset()), self.team_name)
        m = self.api.meter
        snap.stats.api_calls, snap.stats.throttles = m.api_calls, m.throttles
        return snap
