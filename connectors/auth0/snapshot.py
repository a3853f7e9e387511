"""Building a full `Snapshot` of an Auth0 tenant.

Auth0 has no groups and no nesting: teams are roles and/or organizations (`teams`), each with
its direct user members. Auth0 keeps no change feed a snapshot could resume from, so every
read is full (a cursor is ignored and none is returned).

Users: `GET /api/v2/users` pages with page/per_page and refuses any page past the first 1,000
results (`page * per_page + per_page > 1000` is a 400, whatever the tenant's size). So:

- `users_source = "auto"` (default): the first page asks for `include_totals`; a tenant of at
  most 1,000 users is paged through (per_page a divisor of 1,000, so the last page stays within
  the cap), a larger one is read through a users-export job;
- `"export"`: always the export job: `POST /api/v2/jobs/users-exports` (format json, the
  fields `reader.EXPORT_FIELDS`), poll `GET /api/v2/jobs/{id}` until `completed`, download the
  pre-signed `location` (gzip NDJSON) without the bearer token;
- `"list"`: always the list, and a tenant past 1,000 users is a configuration error.

Offset paging over a list that changes while it is read skips or repeats users; a list whose
`total` moved between pages, or that yielded another number of users than its total, marks the
read incomplete (a skipped user would otherwise look deleted). The export job has no such gap.

Members: `/roles/{id}/users` and `/organizations/{id}/members` with checkpoint paging (`take`
≤ 100, `from` = the previous answer's `next`), which has no 1,000 cap; read as each team
arrives, at most `concurrency` at a time. The team lists themselves page with page/per_page
(roles: Auth0 allows at most 1,000 roles per tenant, so the offset cap is never crossed) or
checkpoints (organizations: up to 100,000 per tenant, 2,000,000 on request).

Failure policy: the users read and the first page of each team list are fatal (the read means
nothing without them); a later failure, or any member list failing, marks the snapshot
incomplete and stops only that list.
"""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import Callable, Coroutine
from sys import intern
from typing import Any

from connectors.auth0.client import Auth0Api
from connectors.auth0.reader import EXPORT_FIELDS, export_users, org_to_group, role_to_group, to_user
from connectors.base import (
    AuthError,
    BadDataError,
    CircuitOpen,
    ConfigError,
    ConnectorError,
    ProgressCallback,
    UnavailableError,
)
from connectors.breaker import died_mid_read
from connectors.budget import Deadline
from syncd.reconcile.snapshot import Snapshot

OFFSET_CAP = 1000  # page/per_page reads stop at this many results
PER_PAGE_MAX = 100
TAKE_MAX = 100
FATAL = (AuthError, ConfigError)


def per_page_for(page_size: int) -> int:
    """The largest divisor of 1,000 not above `page_size` (and ≤ 100): with it, the last
    page of a 1,000-result list ends exactly at the cap instead of crossing it."""
    size = max(1, min(page_size, PER_PAGE_MAX))
    while OFFSET_CAP % size:
        size -= 1
    return size


class SnapshotReader:
    """One snapshot read; not reusable."""

    def __init__(
        self,
        api: Auth0Api,
        directory: str,
        *,
        page_size: int,
        concurrency: int,
        teams: str,
        users_source: str,
        deadline: Deadline,
        progress: ProgressCallback | None,
        poll_interval: float,
    ) -> None:
        self.api, self.deadline = api, deadline
        self.per_page, self.take = per_page_for(page_size), max(1, min(page_size, TAKE_MAX))
        self.teams, self.users_source, self.poll_interval = teams, users_source, poll_interval
        self.sem = asyncio.Semaphore(concurrency)
        self.progress = progress or (lambda phase, n: None)
        self.snap = Snapshot(directory)
        self.counts = {"users": 0, "groups": 0, "members": 0}
        self._members: dict[str, set[str]] = {}
        self._teams: dict[str, tuple[str, dict[str, Any]]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def full(self) -> Snapshot:
        self.snap.mode = "full"
        streams: list[Coroutine[Any, Any, None]] = [self._guarded_users()]
        if self.teams in ("roles", "both"):
            streams.append(self._roles())
        if self.teams in ("organizations", "both"):
            streams.append(self._organizations())
        await self._run(*streams)
        return self._finish()

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

    async def _get(self, path: str, params: dict[str, Any], what: str) -> Any:
        doc = await self.api.call("GET", path, what=what, deadline=self.deadline, params=params)
        self.snap.stats.pages += 1
        return doc

    def _failed(self, what: str, exc: ConnectorError) -> None:
        """Mark the snapshot incomplete; an open breaker is recorded once, by the connector."""
        if isinstance(exc, CircuitOpen):
            self.snap.complete = False
        else:
            self.snap.mark_incomplete(f"{what}: {exc}")

    # -- users

    async def _guarded_users(self) -> None:
        try:
            await self._users()
        except CircuitOpen as exc:
            if not died_mid_read(exc, self.snap.stats.pages):
                raise
            self.snap.complete = False

    async def _users(self) -> None:
        if self.users_source == "export":
            await self._export()
            return
        params = {"page": 0, "per_page": self.per_page, "include_totals": "true", "search_engine": "v3"}
        doc = await self._get("/users", params, "users")
        total = _field(doc, "total", int, "users")
        if total > OFFSET_CAP:
            if self.users_source == "list":
                raise ConfigError(
                    f"the tenant has {total} users; Auth0 lists at most {OFFSET_CAP}: "
                    'set users_source = "export" (or "auto")'
                )
            await self._export()
            return
        self._add_users(_field(doc, "users", list, "users"))
        page, totals = 1, {total}
        while page * self.per_page < total:
            try:
                doc = await self._get("/users", {**params, "page": page}, "users")
                items = _field(doc, "users", list, "users")
                totals.add(_field(doc, "total", int, "users"))
            except FATAL:
                raise
            except ConnectorError as exc:
                self._failed(f"users page {page}", exc)
                return
            if not items:
                break
            self._add_users(items)
            page += 1
        if len(totals) > 1 or len(self.snap.users) != total:
            # offset paging over a changing list skips or repeats users: a user skipped here
            # would look deleted, so this read removes nothing (the next one will)
            self.snap.mark_incomplete(
                f"users: the user list changed while it was paged ({len(self.snap.users)} read, "
                f"totals {sorted(totals)}); removals wait for the next run"
            )

    def _add_users(self, items: list[dict[str, Any]]) -> None:
        users = self.snap.users
        for obj in items:
            try:
                u = to_user(obj)
            except (KeyError, TypeError) as exc:
                self.snap.mark_incomplete(f"users: an object without a usable {exc}")
                continue
            users[intern(u.external_id)] = u
        self.counts["users"] += len(items)
        self.progress("users", self.counts["users"])

    async def _export(self) -> None:
        """Users through a users-export job; any failure raises (users are the base)."""
        body = {"format": "json", "fields": [{"name": f} for f in EXPORT_FIELDS]}
        job = await self.api.call(
            "POST", "/jobs/users-exports", what="users export job", deadline=self.deadline, json=body
        )
        job_id = _field(job, "id", str, "users export job")
        wait = self.poll_interval
        while job.get("status") != "completed":
            if job.get("status") == "failed":
                raise UnavailableError(
                    f"users export job {job_id} failed: {str(job.get('summary') or job.get('status'))[:200]}"
                )
            if wait >= self.deadline.remaining():
                from connectors.base import BudgetExceeded

                raise BudgetExceeded(f"users export job {job_id} not done within the time budget")
            await asyncio.sleep(wait)
            wait = min(wait * 1.5, 5.0)
            job = await self.api.call(
                "GET", f"/jobs/{job_id}", what="users export job", deadline=self.deadline
            )
            if not isinstance(job, dict):
                raise BadDataError("users export job: not a job object")
        location = _field(job, "location", str, "users export job")
        data = await self.api.download(location, what="users export file", deadline=self.deadline)
        try:
            raw = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise BadDataError(f"users export file: not gzip data ({exc})") from exc
        batch: list[dict[str, Any]] = []
        try:
            for obj in export_users(raw):
                batch.append(obj)
                if len(batch) == 1000:
                    self._add_users(batch)
                    batch = []
        except (ValueError, TypeError) as exc:
            raise BadDataError(f"users export file: a line is not a JSON object ({exc})") from exc
        self._add_users(batch)

    # -- teams

    async def _roles(self) -> None:
        params = {"page": 0, "per_page": self.per_page, "include_totals": "true"}
        page, seen, totals = 0, 0, set()
        while True:
            try:
                doc = await self._get("/roles", {**params, "page": page}, "roles")
                items = _field(doc, "roles", list, "roles")
                total = _field(doc, "total", int, "roles")
            except FATAL:
                raise
            except ConnectorError as exc:
                if page == 0 and not died_mid_read(exc, self.snap.stats.pages):
                    raise
                self._failed(f"roles page {page}", exc)
                return
            self._add_teams("role", items, "/roles/{id}/users", "users")
            seen += len(items)
            totals.add(total)
            page += 1
            if not items or seen >= total:
                if len(totals) > 1 or seen != total:  # a role skipped would look deleted
                    self.snap.mark_incomplete(
                        f"roles: the role list changed while it was paged ({seen} read)"
                    )
                return
            if (page + 1) * self.per_page > OFFSET_CAP:
                self.snap.mark_incomplete(
                    f"roles: only the first {OFFSET_CAP} of {total} roles can be listed"
                )
                return

    async def _organizations(self) -> None:
        await self._checkpoint(
            "/organizations",
            "organizations",
            "organizations",
            lambda items: self._add_teams("org", items, "/organizations/{id}/members", "members"),
            first_fatal=True,
        )

    def _add_teams(self, kind: str, items: list[dict[str, Any]], members_path: str, key: str) -> None:
        for obj in items:
            tid = obj.get("id")
            if not isinstance(tid, str) or not tid:
                self.snap.mark_incomplete(f"{kind}s: an object without an id")
                continue
            self._teams[tid] = (kind, obj)
            self._members[tid] = set()
            self._tasks.append(
                asyncio.create_task(self._members_of(tid, members_path.format(id=tid), key, kind))
            )
        self.counts["groups"] += len(items)
        self.progress("groups", self.counts["groups"])

    async def _members_of(self, tid: str, path: str, key: str, kind: str) -> None:
        members = self._members[tid]

        def add(items: list[dict[str, Any]]) -> None:
            members.update(map(intern, [obj["user_id"] for obj in items]))
            self.counts["members"] += len(items)
            self.progress("members", self.counts["members"])

        async with self.sem:
            await self._checkpoint(path, key, f"members of {kind} {tid}", add, first_fatal=False)

    async def _checkpoint(
        self,
        path: str,
        key: str,
        what: str,
        sink: Callable[[list[dict[str, Any]]], None],
        *,
        first_fatal: bool,
    ) -> None:
        """Page a checkpoint list (`take`, `from` = previous `next`) into `sink`."""
        params: dict[str, Any] = {"take": self.take}
        first = True
        try:
            while True:
                doc = await self._get(path, params, what)
                items = _field(doc, key, list, what)
                first = False
                sink(items)
                nxt = doc.get("next")
                if not items or not nxt:
                    return
                params = {"take": self.take, "from": nxt}
        except FATAL:
            raise
        except ConnectorError as exc:
            if first and first_fatal and not died_mid_read(exc, self.snap.stats.pages):
                raise
            self._failed(what, exc)
        except (KeyError, TypeError) as exc:
            self.snap.mark_incomplete(f"{what}: an object without {exc}")

    # -- result

    def _finish(self) -> Snapshot:
        snap = self.snap
        for tid, (kind, obj) in self._teams.items():
            make = role_to_group if kind == "role" else org_to_group
            snap.groups[tid] = make(obj, self._members.pop(tid))
        snap.cursor = None
        m = self.api.meter
        snap.stats.api_calls, snap.stats.throttles = m.api_calls, m.throttles
        return snap


def _field(doc: Any, name: str, typ: type, what: str) -> Any:
    if not isinstance(doc, dict) or not isinstance(doc.get(name), typ):
        raise BadDataError(f"{what}: the answer has no {typ.__name__} {name!r}")
    return doc[name]
