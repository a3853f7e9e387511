"""Building a full `Snapshot` from the Directory API, and one user's groups for the login path.

Snapshot reads (all through `ServicePool`, at most `concurrency` requests in flight):

1. ``users.list`` (all users of the customer or domain, ``projection=basic``) and
   ``groups.list`` run side by side, page after page, each in one worker job that holds its
   thread to the last page (`stream_pages`: a page never waits behind queued member reads);
2. as each groups page arrives, its groups' ``members.list`` reads are queued, up to
   `MEMBER_JOB_GROUPS` groups per worker job (each group read whole, all its pages, in that
   job's thread, one group after the other);
3. nested groups that ``groups.list`` did not return (another domain's) are read on demand,
   once each, until none is left;
4. each group's members are matched to directory users as its read arrives (or once the users
   list is read whole, if that is later); `transitive_users` expands nesting (cycle-safe);
   members of type CUSTOMER become every user (``customer_members="expand"``) or a problem
   (``"refuse"``); members that are not directory users (type USER with an unknown id —
   external accounts — or EXTERNAL) are skipped: they cannot be `SnapshotUser`s of this
   directory (invariant: member ids are snapshot user ids), and they are counted in one log
   line, without their addresses.

Failure policy: auth and config errors raise; so does any failure of the first users or groups
page. Any other read that fails after its retries marks the snapshot incomplete (one problem
per failed read, the first `MAX_PROBLEMS` listed) and the rest is still read.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from connectors.base import (
    AuthError,
    CircuitOpen,
    ConfigError,
    ConnectorError,
    NotFoundError,
    ProgressCallback,
)
from connectors.breaker import died_mid_read
from connectors.google.client import CallContext, ServicePool
from connectors.google.errors import expect_dict, translate
from connectors.google.expand import transitive_users
from connectors.google.paging import iter_pages, stream_pages
from syncd.heap import heap_frozen
from syncd.reconcile.snapshot import Snapshot, SnapshotGroup, SnapshotUser, UserGroups

log = logging.getLogger(__name__)

USER_FIELDS = "id,primaryEmail,name(givenName,familyName,fullName),suspended,archived"
GROUP_FIELDS = "id,email,name,description"
MEMBER_FIELDS = "id,email,type"
MAX_PROBLEMS = 20
#: groups whose members one worker job reads in turn. A job costs a thread hand-off and an
#: event-loop wake-up, about as much CPU as a members page's own request does; at 8 groups a
#: job that cost falls below 10 % of the reads, while a job still takes only a few requests'
#: time, so the threads stay evenly loaded to the end.
MEMBER_JOB_GROUPS = 8
FATAL = (AuthError, ConfigError)


@dataclass(frozen=True)
class ReadSettings:
    """Scope and paging of the reads. Page sizes are already capped to Google's maxima."""

    customer: str
    domain: str | None
    users_page: int
    groups_page: int
    num_retries: int
    customer_members: Literal["expand", "refuse"]

    def scope(self) -> dict[str, str]:
        return {"domain": self.domain} if self.domain else {"customer": self.customer}


@dataclass
class DirectMembers:
    """One group's direct members as read (possibly partly, when `error` is set)."""

    users: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    customer: bool = False
    other: int = 0  # members of types we do not sync (EXTERNAL, unknown)
    error: ConnectorError | None = None
    foreign: bool = False  # a nested group outside the directory (see `read_members`)
    #: `users` that are directory users, frozen; set once the users list is read (`_known`)
    known: frozenset[str] | None = None
    #: `users` frozen by the thread that read them, while they are still in its CPU cache
    #: (hashing them later, on the loop, cost ~0.35 s more at 1M memberships)
    user_set: frozenset[str] = frozenset()


def _settle() -> None:
    """Put everything alive now out of the cyclic collector's reach (`gc.freeze`, O(1)).

    Called in the event loop after each users page and each finished member job, inside
    `heap_frozen` (whose exit hands it all back): what a read keeps grows with every page, and
    without this the collections the next pages' allocations trigger walk it again and again
    (measured on 50k users / 5k groups / 500k memberships: ~420 young, ~38 middle and 3-4 full
    collections per snapshot, against ~300, ~5 and none). Memory is still freed by reference
    counting; only garbage in reference cycles waits for the end of the read."""
    gc.freeze()


def to_user(d: dict[str, Any]) -> SnapshotUser | None:
    """A `SnapshotUser` from a Directory user resource; None without id or primaryEmail."""
    uid, email = d.get("id"), d.get("primaryEmail")
    if not uid or not email:
        return None
    name = d.get("name") or {}
    return SnapshotUser(
        external_id=str(uid), user_name=email, email=email,
        active=not (d.get("suspended") or d.get("archived")),
        display_name=name.get("fullName"), given_name=name.get("givenName"),
        family_name=name.get("familyName"))


def to_group(d: dict[str, Any], members: frozenset[str] = frozenset()) -> SnapshotGroup:
    return SnapshotGroup(external_id=str(d["id"]), display_name=d.get("name") or d.get("email", ""),
                         member_ids=members, description=d.get("description") or None)


def read_members(svc: Any, group_id: str, settings: ReadSettings, *,
                 listed: bool = True) -> DirectMembers:
    """All pages of one group's direct members (runs in a worker thread).

    For a nested group that groups.list did not return (`listed` False), "not found" and
    "not authorized" mean the group belongs to someone else (another customer): it is then
    reported as `foreign`, with no members, instead of failing.
    """
    out = DirectMembers()
    params = {"groupKey": group_id, "maxResults": settings.groups_page,
              "fields": f"nextPageToken,members({MEMBER_FIELDS})"}
    try:
        for page in iter_pages(svc.members.list, params, f"members of group {group_id}",
                               settings.num_retries):
            for m in page.get("members", ()):
                kind, mid = m.get("type"), m.get("id")
                if kind == "USER" and mid:
                    out.users.append(mid)
                elif kind == "GROUP" and mid:
                    out.groups.append(mid)
                elif kind == "CUSTOMER":
                    out.customer = True
                else:
                    out.other += 1
    except ConfigError:
        raise
    except (NotFoundError, AuthError) as exc:
        if not listed and is_foreign(exc):
            out.foreign = True
        elif isinstance(exc, AuthError):
            raise
        else:
            out.error = exc  # e.g. deleted between groups.list and this read
    except ConnectorError as exc:
        out.error = exc
    out.user_set = frozenset(out.users)
    return out


def is_foreign(exc: ConnectorError) -> bool:
    """A 404, or a 403 that is not about rate limits: the object is not ours to read."""
    cause = exc.__cause__
    status = getattr(getattr(cause, "resp", None), "status", None)
    return isinstance(exc, NotFoundError) or status == 403


async def all_or_nothing(futures: list[asyncio.Future[Any]]) -> list[Any]:
    """Results of all `futures`; on the first failure cancel the others and raise it."""
    if not futures:
        return []
    done, pending = await asyncio.wait(futures, return_when=asyncio.FIRST_EXCEPTION)
    for fut in done:
        if not fut.cancelled() and fut.exception() is not None:
            for other in pending:
                other.cancel()
            raise fut.exception()  # type: ignore[misc]
    return [fut.result() for fut in futures]


class SnapshotReader:
    """One full read of one directory; use once: ``await SnapshotReader(...).read()``."""

    def __init__(self, pool: ServicePool, ctx: CallContext, settings: ReadSettings,
                 directory: str, progress: ProgressCallback | None) -> None:
        self.pool, self.ctx, self.settings = pool, ctx, settings
        self.snap = Snapshot(directory, mode="full", stats=ctx.stats)
        self.progress = progress or (lambda phase, n: None)
        self.groups: dict[str, dict[str, Any]] = {}
        #: direct members of every group read so far, in the order the reads were queued
        self.direct: dict[str, DirectMembers] = {}
        self.jobs: list[asyncio.Future[list[DirectMembers]]] = []
        self._queued: list[tuple[list[str], asyncio.Future[list[DirectMembers]]]] = []
        self._stop = False  # set when the read failed: queued member jobs skip their groups
        self.failures: list[str] = []
        self.members_read = 0
        #: the users list is read (whole or cut short): member sets can be checked against it
        self.users_read = False
        self._unchecked: list[DirectMembers] = []

    def _run(self, job: Callable[[Any], Any]) -> asyncio.Future[Any]:
        return self.pool.run(self.ctx, job)

    async def read(self) -> Snapshot:
        """The snapshot. The cyclic garbage collector is kept off what has been read (see
        `_settle`) until the snapshot is assembled, then everything is handed back."""
        with heap_frozen():
            try:
                await self.pool.ensure_token(self.ctx)
                await all_or_nothing([asyncio.ensure_future(self._read_users()),
                                      asyncio.ensure_future(self._read_groups())])
                await self._members_queued()
                await self._read_unlisted_nested()
            except BaseException:
                self._stop = True  # running member jobs finish the group they are reading
                for fut in self.jobs:
                    fut.cancel()  # queued member jobs never start
                raise
            self._assemble()
        for problem in self.failures[:MAX_PROBLEMS]:
            self.snap.mark_incomplete(problem)
        if len(self.failures) > MAX_PROBLEMS:
            self.snap.mark_incomplete(f"... and {len(self.failures) - MAX_PROBLEMS} more reads "
                                      "failed")
        return self.snap

    async def _read_users(self) -> None:
        params = {**self.settings.scope(), "maxResults": self.settings.users_page,
                  "projection": "basic", "fields": f"nextPageToken,users({USER_FIELDS})"}
        await self._paged("users", lambda s: s.users.list, params, self._take_users)
        self.users_read = True
        unchecked, self._unchecked = self._unchecked, []
        for res in unchecked:
            self._check(res)

    async def _read_groups(self) -> None:
        params = {**self.settings.scope(), "maxResults": self.settings.groups_page,
                  "fields": f"nextPageToken,groups({GROUP_FIELDS})"}
        await self._paged("groups", lambda s: s.groups.list, params, self._take_groups)

    async def _paged(self, what: str, method: Callable[[Any], Any], params: dict[str, Any],
                     take: Callable[[dict[str, Any]], int]) -> None:
        """Read every page; `take(page)` keeps its items and returns the total kept so far."""
        pages = 0
        count = 0
        try:
            async with contextlib.aclosing(stream_pages(
                    self._run, method, params, what, self.settings.num_retries)) as stream:
                async for page in stream:  # closed on any exit: its job stops at once
                    pages += 1
                    count = take(page)
                    self.progress(what, count)
        except FATAL:
            raise
        except ConnectorError as exc:
            if pages == 0 and not died_mid_read(exc, self.snap.stats.pages):
                raise  # nothing of this kind could be read: the snapshot would mean nothing
            if isinstance(exc, CircuitOpen):  # recorded once by the connector
                self.snap.complete = False
            else:
                self.failures.append(f"{exc} (the {what} list is cut short)")

    def _take_users(self, page: dict[str, Any]) -> int:
        for d in page.get("users", ()):
            user = to_user(d)
            if user is not None:
                self.snap.users[user.external_id] = user
        _settle()
        return len(self.snap.users)

    def _take_groups(self, page: dict[str, Any]) -> int:
        fresh: list[str] = []
        for d in page.get("groups", ()):
            gid = d.get("id")
            if gid and gid not in self.groups:
                self.groups[gid] = d
                fresh.append(gid)
        self._queue_members(fresh)
        return len(self.groups)

    def _queue_members(self, gids: list[str], *, listed: bool = True) -> None:
        """Queue the member reads of `gids`, `MEMBER_JOB_GROUPS` groups per worker job."""
        for start in range(0, len(gids), MEMBER_JOB_GROUPS):
            chunk = gids[start:start + MEMBER_JOB_GROUPS]
            fut = self._run(functools.partial(self._read_chunk, chunk, listed))
            fut.add_done_callback(self._members_done)
            self.jobs.append(fut)
            self._queued.append((chunk, fut))

    def _read_chunk(self, gids: list[str], listed: bool, svc: Any) -> list[DirectMembers]:
        """`read_members` of each of `gids` in turn (a worker thread).

        Once the whole read has failed (here, with an auth or config error, or elsewhere) no
        job starts another group: it returns early with fewer results, which nobody reads."""
        out: list[DirectMembers] = []
        for gid in gids:
            if self._stop:
                break
            try:
                out.append(read_members(svc, gid, self.settings, listed=listed))
            except FATAL:
                self._stop = True
                raise
        return out

    def _members_done(self, fut: asyncio.Future[list[DirectMembers]]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            return
        for res in fut.result():
            self.members_read += len(res.users) + len(res.groups) + res.customer + res.other
            self.progress("members", self.members_read)
            if self.users_read:
                self._check(res)
            else:
                self._unchecked.append(res)
        _settle()

    def _check(self, res: DirectMembers) -> frozenset[str]:
        """Set and return `res.known`: its users that are directory users, frozen.

        Done as each read arrives rather than all at the end: the reads still in flight overlap
        it, where at the end it would add to the snapshot's time (~0.5 s at 1M memberships).
        Only once the users list is read: until then a member may be a user not read yet.
        A frozenset, so that `transitive_users` hands a group without nested groups this same
        set instead of copying it."""
        mine = res.user_set
        unknown = mine.difference(self.snap.users)  # C loop over `mine` (a dict is probed)
        res.known = mine.difference(unknown) if unknown else mine
        return res.known

    async def _members_queued(self) -> None:
        """Wait for every queued member job and file its groups' results in `direct`."""
        queued, self._queued = self._queued, []
        results = await all_or_nothing([fut for _, fut in queued])
        for (gids, _), got in zip(queued, results, strict=True):
            self.direct.update(zip(gids, got, strict=True))

    async def _read_unlisted_nested(self) -> None:
        """Read nested groups that groups.list did not return, once each, until closure."""
        while True:
            missing = {c for res in self.direct.values() for c in res.groups
                       if c not in self.direct}
            if not missing:
                return
            self._queue_members(sorted(missing), listed=False)
            await self._members_queued()

    def _assemble(self) -> None:
        users, settings = self.snap.users, self.settings
        direct_users: dict[str, frozenset[str]] = {}
        direct_groups: dict[str, list[str]] = {}
        skipped, skipped_in = 0, 0
        foreign = {gid for gid, res in self.direct.items() if res.foreign}
        for gid, res in self.direct.items():
            if isinstance(res.error, CircuitOpen):  # recorded once by the connector
                self.snap.complete = False
            elif res.error is not None:
                self.failures.append(
                    f"{res.error} ({self._label(gid)} keeps only the members read)")
            mine = res.known if res.known is not None else self._check(res)
            outside = len(res.users) - len(mine) + res.other
            if foreign:
                outside += sum(c in foreign for c in res.groups)
            if outside:
                skipped, skipped_in = skipped + outside, skipped_in + 1
            if res.customer:
                if settings.customer_members == "expand":
                    mine = frozenset(users)
                else:
                    self.failures.append(
                        f"{self._label(gid)} has the whole customer as a member (type CUSTOMER) and "
                        "customer_members='refuse': its members are not listed")
            direct_users[gid] = mine
            direct_groups[gid] = res.groups
        if skipped:
            log.info("directory %s: skipped %d members that are not directory users or groups "
                     "(external accounts or groups, or users missing from a cut-short users "
                     "list) in %d groups", self.snap.directory, skipped, skipped_in)
        closure = transitive_users(direct_users, direct_groups)
        for gid, d in self.groups.items():
            self.snap.groups[gid] = to_group(d, closure.get(gid, frozenset()))

    def _label(self, gid: str) -> str:
        d = self.groups.get(gid)
        return f"group {d.get('email') or gid} ({gid})" if d else f"nested group {gid}"


def list_parents(svc: Any, key: str, settings: ReadSettings) -> list[dict[str, Any]]:
    """The groups `key` (a user or group id or email) is a direct member of (a worker thread).

    ``groups.list(userKey=...)`` lists direct memberships only, and never a group whose member
    is the whole customer (type CUSTOMER): see `connectors.google.customer`."""
    params = {"userKey": key, "maxResults": settings.groups_page,
              "fields": f"nextPageToken,groups({GROUP_FIELDS})"}
    out: list[dict[str, Any]] = []
    for page in iter_pages(svc.groups.list, params, f"groups of {key}", settings.num_retries):
        out.extend(page.get("groups", ()))
    return out


async def ancestors(pool: ServicePool, ctx: CallContext, settings: ReadSettings,
                    keys: list[str], seen: dict[str, dict[str, Any]]) -> None:
    """Add to `seen` every group above `keys`, level by level (one ``groups.list(userKey)``
    per key, in parallel; each group asked once, cycle-safe). Any failed read raises."""
    frontier = list(keys)
    while frontier:
        answers = await all_or_nothing([pool.run(ctx, list_parents, key, settings)
                                        for key in frontier])
        frontier = []
        for group in (g for answer in answers for g in answer):
            gid = group.get("id")
            if gid and gid not in seen:
                seen[gid] = group
                frontier.append(gid)


async def read_user_groups(pool: ServicePool, ctx: CallContext, settings: ReadSettings,
                           directory: str, user: str) -> UserGroups:
    """`user`'s transitive groups as its memberships show them (direct groups, then the groups
    those are members of, ...).

    Groups the user is in only through a member of type CUSTOMER are not among them (the
    caller adds them). Any failed read raises: a partial answer could drop memberships.
    """
    await pool.ensure_token(ctx)

    def get_user(svc: Any) -> dict[str, Any] | None:
        label = "user lookup"
        try:
            with translate(label):
                return expect_dict(svc.users.get(
                    userKey=user, projection="basic", fields=USER_FIELDS,
                ).execute(num_retries=settings.num_retries), label)
        except NotFoundError:
            return None

    found = await pool.run(ctx, get_user)
    person = to_user(found) if found else None
    if person is None:
        return UserGroups(directory, None, (), ctx.stats)
    seen: dict[str, dict[str, Any]] = {}
    await ancestors(pool, ctx, settings, [person.external_id], seen)
    groups = tuple(to_group(d) for _, d in sorted(seen.items()))
    return UserGroups(directory, person, groups, ctx.stats)
