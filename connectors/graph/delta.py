"""Incremental reads over Graph delta queries (`/users/delta()`, `/groups/delta()`).

The cursor is one opaque string holding both saved `@odata.deltaLink`s and the group scope
it was taken under. A delta snapshot:

1. follows both delta rounds to their new deltaLinks (an expired token, HTTP 410
   `syncStateNotFound`, raises `CursorExpired`: the connector then does a full read);
2. merges the group entries of a round by id (one big group arrives on several pages, each
   with part of its `members@delta`; attributes arrive only on some of them);
3. re-reads the transitive members of every changed group and of every group that contains
   a changed group (its ancestors, from `/groups/{id}/transitiveMemberOf`), since nesting
   makes their transitive member sets change too;
4. reports changed users, removed users (`@removed`), those groups, removed groups and
   changed groups that left the scope.

If any read fails the snapshot is incomplete and its cursor holds the old deltaLinks, so the
next delta reads the same changes again (and re-reads those groups); nothing is lost.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import orjson

from connectors.base import AuthError, ConfigError, ConnectorError, CursorExpired, ProgressCallback
from connectors.breaker import died_mid_read
from connectors.graph.paging import DeltaPaginator, NextLinkPaginator, iter_pages, url_request
from connectors.graph.reader import (
    GROUP_SELECT,
    GROUP_TYPE,
    USER_SELECT,
    GraphReader,
    Problems,
    absolute_url,
    in_scope,
    request,
    run_all,
    to_user,
)
from syncd.reconcile.snapshot import Snapshot

_PREFIX = "graph1."


def encode_cursor(users_link: str, groups_link: str, group_source: str) -> str:
    """The opaque cursor for two deltaLinks taken under `group_source`."""
    raw = orjson.dumps({"u": users_link, "g": groups_link, "s": group_source})
    return _PREFIX + base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> dict[str, str] | None:
    """The saved links, or None if the cursor is not one of ours (then a full read follows)."""
    if not cursor.startswith(_PREFIX):
        return None
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor[len(_PREFIX):]))
    except (ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in "ugs"):
        return None
    return data


class DeltaReader:
    """Delta rounds and delta snapshots over a `GraphReader`."""

    def __init__(self, reader: GraphReader) -> None:
        self.r = reader

    def _builder(self, kind: str) -> Any:
        return self.r.client.users.delta if kind == "users" else self.r.client.groups.delta

    async def latest(self, deadline: float) -> str | None:
        """A cursor for "from now on" (`$deltatoken=latest`), or None if it cannot be had
        (no delta for app-assigned scope; a transient failure leaves just no cursor)."""
        if self.r.s.group_source == "app_assigned":
            return None
        links: dict[str, str] = {}
        for kind, select in (("users", USER_SELECT), ("groups", [*GROUP_SELECT, "members"])):
            builder = self._builder(kind)
            url = absolute_url(self.r.api, request(builder, select=select))
            info = url_request(f"{url}{'&' if '?' in url else '?'}$deltatoken=latest")
            for _ in range(2):  # a 410 here is a server hiccup: ask once more
                try:
                    page = await self.r.api.get_json(info, what=f"GET /{kind}/delta()?latest",
                                                     deadline=deadline)
                except (AuthError, ConfigError):
                    raise
                except CursorExpired:
                    continue
                except ConnectorError:
                    return None
                link = page.get("@odata.deltaLink")
                if isinstance(link, str):
                    links[kind] = link
                break
            if kind not in links:
                return None
        return encode_cursor(links["users"], links["groups"], self.r.s.group_source)

    async def round(self, kind: str, link: str, deadline: float,
                    problems: Problems) -> tuple[list[dict[str, Any]], str]:
        """All entries of one delta round from `link` and the link to save afterwards.

        The first page failing raises (`CursorExpired` included); a later page failing marks
        the snapshot incomplete and returns the entries so far with the old `link`."""
        pages = DeltaPaginator()
        entries: list[dict[str, Any]] = []
        try:
            async for value in iter_pages(self.r.api, url_request(link),
                                          pages, what=f"GET /{kind}/delta()", deadline=deadline):
                entries.extend(v for v in value if isinstance(v, dict) and isinstance(v.get("id"), str))
        except ConnectorError as exc:
            if pages.pages == 0 and not died_mid_read(exc, problems.snap.stats.pages):
                raise
            problems.add(f"{kind} delta page {pages.pages + 1}", exc)
            return entries, link
        assert pages.delta_link is not None
        return entries, pages.delta_link

    async def snapshot(self, snap: Snapshot, state: dict[str, str],
                       progress: ProgressCallback | None, deadline: float) -> None:
        """A delta snapshot into `snap` (raises `CursorExpired` for the caller's full read)."""
        s = self.r.s
        problems = Problems(snap, s.time_budget)
        user_entries, users_link = await self.round("users", state["u"], deadline, problems)
        group_entries, groups_link = await self.round("groups", state["g"], deadline, problems)
        snap.mode = "delta"
        for e in user_entries:
            uid = e["id"]
            if "@removed" in e:
                snap.users.pop(uid, None)
                snap.removed_users.add(uid)
                continue
            user = to_user(e)
            if user is None:  # delta sent only some properties: read the user itself
                try:
                    user = to_user(await self.r.api.get_json(
                        request(self.r.client.users.by_user_id(uid), select=USER_SELECT),
                        what="GET /users/{id}", deadline=deadline))
                except ConnectorError as exc:
                    problems.add(f"user {uid}", exc)
                    continue
            if user is not None:
                snap.removed_users.discard(uid)
                snap.users[uid] = user
        if progress:
            progress("users", len(snap.users))

        changed = merge_group_entries(group_entries, snap.removed_groups)
        await self._complete_attributes(changed, problems, deadline)
        targets = dict(changed)
        sem = asyncio.Semaphore(s.concurrency)

        async def ancestors(gid: str) -> None:
            builder = self.r.client.groups.by_group_id(gid).transitive_member_of
            first = request(builder, select=GROUP_SELECT, top=s.page_size)
            async with sem:
                try:
                    async for value in iter_pages(
                            self.r.api, first,
                            NextLinkPaginator(),
                            what=f"GET /groups/{gid}/transitiveMemberOf", deadline=deadline):
                        for o in value:
                            if o.get("@odata.type") == GROUP_TYPE and o["id"] not in snap.removed_groups:
                                targets.setdefault(o["id"], o)
                except ConnectorError as exc:
                    problems.add(f"ancestors of group {gid}", exc)

        await run_all([ancestors(g) for g in changed])
        assigned = None  # app_assigned scope has no delta (see `latest`)
        in_targets = {g: o for g, o in targets.items() if in_scope(o, s.group_source, assigned)}
        snap.removed_groups.update(g for g in changed if g not in in_targets)
        if progress:
            progress("groups", len(in_targets))
        await run_all([self.r.read_members(o, snap, sem, problems, deadline)
                       for o in in_targets.values()])
        problems.finish()
        # an incomplete delta keeps the old links: the next delta reads these changes again
        snap.cursor = (encode_cursor(users_link, groups_link, s.group_source) if snap.complete
                       else encode_cursor(state["u"], state["g"], state["s"]))

    async def _complete_attributes(self, changed: dict[str, dict[str, Any]], problems: Problems,
                                   deadline: float) -> None:
        """Read groups whose delta entries carried only id and members@delta."""
        async def one(gid: str) -> None:
            try:
                obj = await self.r.api.get_json(
                    request(self.r.client.groups.by_group_id(gid), select=GROUP_SELECT),
                    what="GET /groups/{id}", deadline=deadline)
                changed[gid] = {**obj, **changed[gid]}
            except ConnectorError as exc:
                problems.add(f"group {gid}", exc)

        await run_all([one(g) for g, o in changed.items() if "displayName" not in o])


def merge_group_entries(entries: list[dict[str, Any]], removed: set[str]) -> dict[str, dict[str, Any]]:
    """Group delta entries merged by id, in order: attributes of later entries win,
    `members@delta` lists are concatenated; `@removed` groups go to `removed` instead."""
    merged: dict[str, dict[str, Any]] = {}
    for e in entries:
        gid = e["id"]
        if "@removed" in e:
            merged.pop(gid, None)
            removed.add(gid)
            continue
        removed.discard(gid)
        into = merged.setdefault(gid, {"id": gid, "members@delta": []})
        for k, v in e.items():
            if k == "members@delta":
                into["members@delta"].extend(v or [])
            else:
                into[k] = v
    return merged
