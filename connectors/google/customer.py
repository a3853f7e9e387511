"""Groups that have the whole customer as a member, for the login path.

Google's per-user lookup, ``groups.list(userKey=...)``, lists the groups a user or group is a
*direct* member of. A group whose member is the whole customer (a member of type CUSTOMER, the
"All staff" kind) is never among them unless the user is also a direct member, and neither
are the groups that contain such a group. A snapshot with ``customer_members="expand"`` makes
every user a member of all of them. For a login to mean the same, it must know that set:

- `discover` finds it: every group of the customer (or domain), whose member lists are read
  (types only, up to the first CUSTOMER member), then the groups above those, to closure;
- `CustomerGroups` keeps the answer for `ttl` seconds. A login waits for a discovery at most
  as long as its own budget allows; the discovery goes on in the background (on its own
  worker threads and budget) and the next login uses it; a stale answer is served while a
  fresh one is read. A group made whole-customer within the last `ttl` seconds can therefore
  lose a login's user until the next pull adds them back; nothing else can.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from connectors.base import ConnectorError, NotFoundError
from connectors.google.client import CallContext, ServicePool
from connectors.google.paging import iter_pages
from connectors.google.reader import GROUP_FIELDS, ReadSettings, all_or_nothing, ancestors

log = logging.getLogger(__name__)

#: group id -> the group resource (id, email, name, description)
Groups = dict[str, dict[str, Any]]


async def discover(pool: ServicePool, ctx: CallContext, settings: ReadSettings) -> Groups:
    """Every group that has the whole customer as a member, directly or through nested groups.

    Costs one ``groups.list`` page per 200 groups, one ``members.list`` page per 200 members
    (fewer: a group's read stops at its CUSTOMER member), and one ``groups.list(userKey)`` per
    group found. Any failed read raises."""

    def all_groups(svc: Any) -> list[dict[str, Any]]:
        params = {
            **settings.scope(),
            "maxResults": settings.groups_page,
            "fields": f"nextPageToken,groups({GROUP_FIELDS})",
        }
        out: list[dict[str, Any]] = []
        for page in iter_pages(svc.groups.list, params, "groups", settings.num_retries):
            out.extend(page.get("groups", ()))
        return out

    def has_customer(svc: Any, gid: str) -> bool:
        # members.list, the call snapshots rely on for CUSTOMER members (members.get does not
        # document the customer id as a memberKey); only the types, and stop at the first hit
        params = {
            "groupKey": gid,
            "maxResults": settings.groups_page,
            "fields": "nextPageToken,members(type)",
        }
        try:
            for page in iter_pages(svc.members.list, params, f"members of group {gid}", settings.num_retries):
                if any(m.get("type") == "CUSTOMER" for m in page.get("members", ())):
                    return True
        except NotFoundError:  # deleted since groups.list
            return False
        return False

    await pool.ensure_token(ctx)
    groups = {g["id"]: g for g in await pool.run(ctx, all_groups) if g.get("id")}
    ids = sorted(groups)
    flags = await all_or_nothing([pool.run(ctx, has_customer, gid) for gid in ids])
    found: Groups = {gid: groups[gid] for gid, yes in zip(ids, flags, strict=True) if yes}
    await ancestors(pool, ctx, settings, list(found), found)
    return found


class CustomerGroups:
    """The cached result of `discover` (see the module docstring). Used from one event loop.

    `ttl` seconds a discovery stays fresh."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.groups: Groups | None = None
        self.error: str | None = None
        self._at = 0.0
        self._task: asyncio.Task[None] | None = None

    def fresh(self) -> bool:
        return self.groups is not None and time.monotonic() - self._at < self.ttl

    async def get(self, run: Callable[[], Awaitable[Groups]], *, wait: float) -> Groups | None:
        """The whole-customer groups, or None when they are not known yet: a discovery
        (`run()`) is started if none is fresh, and waited for at most `wait` seconds."""
        if self.fresh():
            return self.groups
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._discover(run))
        if self.groups is not None:
            return self.groups  # stale while a fresh one is read
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=max(0.0, wait))
        except TimeoutError:
            return None
        return self.groups

    async def _discover(self, run: Callable[[], Awaitable[Groups]]) -> None:
        started = time.monotonic()
        try:
            found = await run()
        except ConnectorError as exc:  # the next login tries again
            self.error = str(exc)
            log.warning("whole-customer groups could not be read: %s", exc)
            return
        self.groups, self._at, self.error = found, started, None
        log.info("whole-customer groups read: %d in %.1f s", len(found), time.monotonic() - started)
