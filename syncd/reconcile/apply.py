"""Apply a Plan through the service layer, in batches; each batch is one transaction.

A crash between batches leaves every batch either written or not; the next run diffs again
and completes the rest (apply is idempotent at the level of a whole run).
Order: users, then teams (so members can name them): within each, the changes that rename
(written with any permutation of names, in one transaction per chain or cycle of renames, so
that they free the names creates take), then creates and reactivations; member adds, member
removals, then deactivations and archives last.

The plan is computed before apply; rows an on-login sync creates meanwhile (same directory
and externalId as a planned create) are adopted and brought to the plan's values, and a batch
that lost a race to such a writer is tried again (`_transaction`), so neither feed fails.

Creates, (de)activations and member changes go through `syncd.service.bulk` (a few
statements per batch, whatever its size); attribute updates, renames and (un)archiving,
which a sync makes a few of at a time, through the per-row operations.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from itertools import chain, repeat
from typing import Any, Literal, TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from syncd.heap import collector_paused, heap_frozen
from syncd.reconcile.plan import MemberChange, Plan, TeamChange, UserChange
from syncd.reconcile.snapshot import SnapshotUser
from syncd.service import bulk, keys, pg_rebuild, teams, users
from syncd.service.context import Actor
from syncd.service.errors import Conflict, NotFound
from syncd.service.resource import fold
from syncd.store import session_scope
from syncd.store.bulkio import large_writes
from syncd.store.models import Directory, Team, User

log = logging.getLogger("syncd.reconcile.apply")
T = TypeVar("T")

#: users or teams per transaction; None: the store's own size, `BATCHES`
BATCH: int | None = None
#: per store: SQLite rewrites (and checkpoints) every index page a transaction dirtied, and
#: 5000 random keys dirty most leaves of a 100k-row index, so fewer, larger transactions
BATCHES = {"sqlite": 50_000, "postgresql": 5000}
#: tries of one batch that lost a race to a concurrent writer (see `_transaction`)
ATTEMPTS = 3
#: memberships per transaction (a team's changes are split only when it alone has more);
#: None: the store's own size, `MEMBER_BATCHES`
MEMBER_BATCH: int | None = None
#: per store. On SQLite a pull's first batch into a small table rebuilds the (user, team)
#: index instead of inserting into it (see `syncd.service.bulk_sqlite`), which pays when that
#: batch is large; but a batch holds SQLite's one write lock, which SCIM writes and on-login
#: syncs wait for (busy timeout 30 s): 500k keeps that wait at a few seconds (an L initial
#: pull's apply measured 22.7 s at 500k, 23.1 s at 2M, 31.6 s at 200k).
MEMBER_BATCHES = {"sqlite": 500_000, "postgresql": 200_000}
#: memberships per statement group of a PostgreSQL first load (`_first_load`: one transaction
#: whatever the size): each group checks and locks the users it names once, so fewer groups
#: repeat less of that; its COPY text is held in memory (about 150 bytes a membership)
FIRST_LOAD_BATCH = 650_000

#: Called after each batch with (phase, objects done so far in that phase, total in that phase).
ApplyProgress = Callable[[str, int, int], None]


@dataclass
class ApplyResult:
    applied: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, n: int = 1) -> None:
        self.applied[kind] = self.applied.get(kind, 0) + n


def user_body(u: SnapshotUser) -> dict[str, Any]:
    body: dict[str, Any] = {"userName": u.user_name, "externalId": u.external_id, "active": u.active}
    if u.display_name:
        body["displayName"] = u.display_name
    name = {k: v for k, v in (("givenName", u.given_name), ("familyName", u.family_name)) if v}
    if name:
        body["name"] = name
    if u.email:
        body["emails"] = [{"value": u.email, "type": "work", "primary": True}]
    return body


def _update_ops(u: SnapshotUser) -> list[dict[str, Any]]:
    value: dict[str, Any] = {
        "userName": u.user_name,
        "displayName": u.display_name,
        "name.givenName": u.given_name,
        "name.familyName": u.family_name,
    }
    ops: list[dict[str, Any]] = [{"op": "replace", "value": {k: v for k, v in value.items() if v}}]
    ops += [
        {"op": "remove", "path": p}
        for p, v in (
            ("displayName", u.display_name),
            ("name.givenName", u.given_name),
            ("name.familyName", u.family_name),
        )
        if not v
    ]
    if u.email:
        ops.append({"op": "replace", "path": "emails[primary eq true].value", "value": u.email})
    else:  # the IdP dropped the address: so does the store (else the diff repeats every run)
        ops.append({"op": "remove", "path": "emails"})
    return ops


def apply_plan(
    engine: Engine,
    plan: Plan,
    actor: Actor,
    progress: ApplyProgress | None = None,
    *,
    result: ApplyResult | None = None,
) -> ApplyResult:
    """Apply `plan`; returns the changes written, per kind. `result`, when given, is filled in
    as each batch commits, so that a caller whose apply raised still knows what was written."""
    result = ApplyResult() if result is None else result
    if plan.empty:
        return result
    tick = progress or (lambda *_: None)
    # the plan and the snapshot it came from (millions of objects at L) stay out of the cyclic
    # collector's walks while the batches allocate
    with heap_frozen():
        _apply(engine, plan, actor, result, tick)
    return result


def _apply(engine: Engine, plan: Plan, actor: Actor, result: ApplyResult, tick: ApplyProgress) -> None:
    user_ids = _ids(engine, User, plan.directory)
    team_ids = _ids(engine, Team, plan.directory)

    first = [u for u in plan.users if u.kind in ("create_user", "update_user", "reactivate_user")]
    last = [u for u in plan.users if u.kind == "deactivate_user"]
    _users(engine, actor, first, user_ids, result, tick)
    early = [t for t in plan.teams if t.kind != "archive_team"]
    _teams(engine, actor, early, team_ids, result, tick)
    adds = [c for c in plan.members if c.kind == "add_members"]
    removes = [c for c in plan.members if c.kind != "add_members"]
    _member_phase(engine, actor, adds, user_ids, team_ids, result, tick)
    _member_phase(engine, actor, removes, user_ids, team_ids, result, tick)
    _users(engine, actor, last, user_ids, result, tick)
    _teams(engine, actor, [t for t in plan.teams if t.kind == "archive_team"], team_ids, result, tick)


def _ids(engine: Engine, model: Any, directory: str) -> dict[str, str]:
    with session_scope(engine, write=False) as s:
        q = select(model.external_id, model.id).where(
            model.directory == directory, model.external_id.is_not(None)
        )
        return dict(s.execute(q).tuples().all())


def _transaction(
    engine: Engine, write: Callable[[Session], T], *, bulk: Actor | None = None, attempts: int = ATTEMPTS
) -> T:
    """`write` in a transaction of its own, tried again (in a new one) when it may have lost a
    race to a concurrent writer: a Conflict (a row it creates was created and committed
    meanwhile by an on-login sync: on PostgreSQL a statement sees rows committed after the
    transaction began, so even a uniqueness check can see it), or PostgreSQL broke a deadlock by
    aborting it. The retry adopts the committed rows; a Conflict that was no race recurs.

    `bulk` (the actor of a batch of `syncd.service.bulk` writes): on SQLite the transaction
    runs without foreign-key enforcement (`session_scope(foreign_keys=False)`). What keeps the
    references of its rows valid: the bulk operations check the teams and users they link
    (`_check_teams`, `_check_users`) and the rows they update inside the transaction, the
    actor's directory is checked here, audit rows name this run's sync run (sync runs are never
    deleted), and SQLite's write lock, held from BEGIN to COMMIT, lets no other writer delete
    any of them in between; the writes of such a batch delete nothing that has dependants.

    A bulk batch runs with the cyclic collector paused (`collector_paused`): its rows are
    acyclic tuples, lists and dicts, hundreds of thousands of them, whose allocations would
    otherwise trigger collections that find nothing to free; the few cycles a session makes
    wait for the next collection after the batch."""
    unchecked = bulk is not None and engine.dialect.name == "sqlite"
    for attempt in range(attempts):
        try:
            paused = collector_paused() if bulk is not None else nullcontext()
            with paused, session_scope(engine, foreign_keys=not unchecked) as s:
                large_writes(s)
                if unchecked and bulk is not None and bulk.directory is not None:
                    _require_directory(s, bulk.directory)
                return write(s)
        except (Conflict, DBAPIError) as exc:
            if attempt == attempts - 1 or not _lost_race(exc):
                raise
            log.info("apply batch retried after a concurrent writer: %s", exc)
    raise AssertionError("unreachable")


def _require_directory(s: Session, name: str) -> None:
    """NotFound unless directory `name` exists (what the users' and teams' foreign key checks)."""
    if s.execute(select(Directory.name).where(Directory.name == name)).first() is None:
        raise NotFound(f"directory {name!r} not found")


def _lost_race(exc: Exception) -> bool:
    if isinstance(exc, Conflict):
        return True
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in ("40P01", "40001")


def _in_batches(
    engine: Engine,
    actor: Actor,
    changes: list[Any],
    phase: str,
    result: ApplyResult,
    tick: ApplyProgress,
    write: Callable[[Session, list[Any]], dict[str, str]],
    ids: dict[str, str],
    done: int = 0,
    total: int | None = None,
) -> None:
    """`write` each `batch_size` changes in a transaction of its own (`_transaction`), then record the
    ids of the rows it created or adopted in `ids`, count the batch and report it."""
    total = len(changes) if total is None else total
    size = batch_size(engine)
    for start in range(0, len(changes), size):
        part = changes[start : start + size]
        ids.update(_transaction(engine, lambda s, part=part: write(s, part), bulk=actor))
        for c in part:
            result.add(c.kind)
        tick(phase, done + start + len(part), total)


def _renames(
    engine: Engine,
    actor: Actor,
    kind: Literal["user", "team"],
    changes: list[Any],
    ids: dict[str, str],
    new_key: Callable[[Any], str],
    write_one: Callable[[Session, Any], None],
    result: ApplyResult,
    tick: ApplyProgress,
    total: int,
) -> int:
    """Write changes that may move names between rows (`new_key` of a change: the fold of the
    name it gives its row), any permutation of names included; returns how many were written.

    A change is written in the same transaction as the change of the row that holds its new
    name now (chains and cycles of renames are one component, never split over batches); in
    that transaction the names those rows hold are parked first (`keys.parked_names`), so the
    order of the writes does not matter. A component is a few rows; batches hold up to `batch_size`
    changes of whole components."""
    if not changes:
        return 0
    with session_scope(engine, write=False) as s:
        holders = keys.name_holders(s, actor=actor, kind=kind, keys=[new_key(c) for c in changes])
    index = {ids[c.external_id]: i for i, c in enumerate(changes)}
    root = list(range(len(changes)))

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    for i, c in enumerate(changes):
        j = index.get(holders.get(new_key(c), ""))
        if j is not None:
            root[find(i)] = find(j)
    components: dict[int, list[int]] = {}
    for i in range(len(changes)):
        components.setdefault(find(i), []).append(i)
    batches: list[list[int]] = [[]]
    size = batch_size(engine)
    for members in components.values():
        if batches[-1] and len(batches[-1]) + len(members) > size:
            batches.append([])
        batches[-1].extend(members)
    done = 0
    for batch in batches:
        part = [changes[i] for i in sorted(batch)]
        rows = {ids[c.external_id] for c in part}
        park = [h for c in part if (h := holders.get(new_key(c))) in rows and h != ids[c.external_id]]

        def write(s: Session, part: list[Any] = part, park: list[str] = park) -> None:
            with keys.parked_names(s, actor=actor, kind=kind, ids=park):
                for c in part:
                    write_one(s, c)
                    # written: let the session forget the rows, or each autoflush of the next
                    # write walks all of them (the cost of a row grew with the rows before it)
                    s.flush()
                    s.expunge_all()

        _transaction(engine, write)
        for c in part:
            result.add(c.kind)
        done += len(part)
        tick(f"{kind}s", done, total)
    return done


def _users(
    engine: Engine,
    actor: Actor,
    changes: list[UserChange],
    ids: dict[str, str],
    result: ApplyResult,
    tick: ApplyProgress,
) -> None:
    """Updates first (they may free the userNames that creates take), then creates and
    (de)activations in bulk (on PostgreSQL, more than a batch of them on several connections,
    `parallel_members`). A create whose externalId appeared in the directory since the plan
    (an on-login sync created the user) adopts that row and updates it to the plan's values."""

    def update(s: Session, c: UserChange) -> None:
        assert c.user is not None
        users.patch_user(s, actor=actor, user_id=ids[c.external_id], operations=_update_ops(c.user))

    def write(s: Session, part: list[UserChange]) -> dict[str, str]:
        creates = [c for c in part if c.kind == "create_user" and c.user is not None]
        found = keys.find_ids(s, actor=actor, kind="user", external_ids=[c.external_id for c in creates])
        new: dict[str, str] = {}
        for c in creates:
            if c.external_id in found:
                assert c.user is not None
                new[c.external_id] = uid = found[c.external_id]
                users.patch_user(s, actor=actor, user_id=uid, operations=_update_ops(c.user))
                bulk.set_active(s, actor=actor, user_ids=[uid], active=c.user.active)
        fresh = [c for c in creates if c.external_id not in found]
        bodies = [user_body(c.user) for c in fresh if c.user is not None]
        for c, uid in zip(fresh, bulk.create_users(s, actor=actor, bodies=bodies), strict=True):
            new[c.external_id] = uid
        for kind, active in (("reactivate_user", True), ("deactivate_user", False)):
            some = [ids.get(c.external_id) or new[c.external_id] for c in part if c.kind == kind]
            if some:
                bulk.set_active(s, actor=actor, user_ids=some, active=active)
        return new

    updates = [c for c in changes if c.kind == "update_user"]
    rest = [c for c in changes if c.kind != "update_user"]
    key = lambda c: fold(c.user.user_name)  # noqa: E731
    done = _renames(engine, actor, "user", updates, ids, key, update, result, tick, len(changes))
    if engine.dialect.name != "postgresql" or len(rest) <= batch_size(engine):
        return _in_batches(engine, actor, rest, "users", result, tick, write, ids, done, len(changes))
    from syncd.reconcile import parallel_members  # it builds on this module

    def share(part: list[UserChange], res: ApplyResult, tk: ApplyProgress) -> None:
        _in_batches(engine, actor, part, "users", res, tk, write, ids)  # `ids`: one dict.update a batch

    shifted: ApplyProgress = lambda phase, n, _total: tick(phase, done + n, len(changes))  # noqa: E731
    parallel_members.run(share, rest, result, shifted, weight=parallel_members.one)


def _teams(
    engine: Engine,
    actor: Actor,
    changes: list[TeamChange],
    ids: dict[str, str],
    result: ApplyResult,
    tick: ApplyProgress,
) -> None:
    """Renames first (any permutation of names, see `_renames`; they may free the names that
    creates take), then creates, restores and archives. A create whose externalId appeared in
    the directory since the plan (an on-login sync created the team) adopts that row: renamed
    to the plan's name and restored if archived."""

    def rename(s: Session, c: TeamChange) -> None:
        _rename_team(s, actor, ids[c.external_id], c.display_name)

    def write(s: Session, part: list[TeamChange]) -> dict[str, str]:
        creates = [c for c in part if c.kind == "create_team"]
        found = keys.find_ids(s, actor=actor, kind="team", external_ids=[c.external_id for c in creates])
        new: dict[str, str] = {}
        for c in creates:
            if c.external_id in found:
                new[c.external_id] = tid = found[c.external_id]
                _rename_team(s, actor, tid, c.display_name)
                teams.set_archived(s, actor=actor, team_id=tid, archived=False)
        fresh = [c for c in creates if c.external_id not in found]
        bodies = [{"displayName": c.display_name, "externalId": c.external_id} for c in fresh]
        for c, tid in zip(fresh, bulk.create_teams(s, actor=actor, bodies=bodies), strict=True):
            new[c.external_id] = tid
        for c in part:
            if c.kind in ("restore_team", "archive_team"):
                teams.set_archived(
                    s, actor=actor, team_id=ids[c.external_id], archived=c.kind == "archive_team"
                )
        return new

    renames = [c for c in changes if c.kind == "rename_team"]
    rest = [c for c in changes if c.kind != "rename_team"]
    key = lambda c: fold(c.display_name)  # noqa: E731
    done = _renames(engine, actor, "team", renames, ids, key, rename, result, tick, len(changes))
    _in_batches(engine, actor, rest, "teams", result, tick, write, ids, done, len(changes))


def _rename_team(s: Session, actor: Actor, team_id: str, name: str) -> None:
    op = {"op": "replace", "path": "displayName", "value": name}
    teams.patch_team(s, actor=actor, team_id=team_id, operations=[op])


def _member_phase(
    engine: Engine,
    actor: Actor,
    changes: list[MemberChange],
    user_ids: dict[str, str],
    team_ids: dict[str, str],
    result: ApplyResult,
    tick: ApplyProgress,
) -> None:
    """`_members`; on PostgreSQL, when the changes fill more than one transaction anyway, over
    several connections at once (`parallel_members`), unless `_first_load` applies. A plan
    that fits one batch stays one transaction on one connection."""
    total = sum(len(c.user_external_ids) for c in changes)
    if engine.dialect.name != "postgresql" or total <= member_batch(engine):
        return _members(engine, actor, changes, user_ids, team_ids, result, tick)
    adds = changes[0].kind == "add_members"
    if adds and _first_load(engine, actor, changes, user_ids, team_ids, result, tick):
        return None
    from syncd.reconcile import parallel_members  # it builds on this module

    def write(part: list[MemberChange], res: ApplyResult, tk: ApplyProgress) -> None:
        _members(engine, actor, part, user_ids, team_ids, res, tk)

    parallel_members.run(write, changes, result, tick)


def _first_load(
    engine: Engine,
    actor: Actor,
    changes: list[MemberChange],
    user_ids: dict[str, str],
    team_ids: dict[str, str],
    result: ApplyResult,
    tick: ApplyProgress,
) -> bool:
    """PostgreSQL: member adds that outnumber the memberships the store holds (a first pull),
    all in one transaction on one connection, the (user, team) index built once at its end
    (`syncd.service.pg_rebuild`), teams in id order so that the primary key is filled in its
    own order; returns whether it did. False, with nothing written, where that does not apply
    (then the caller writes them in batches), also when the transaction lost a race to a
    concurrent writer (tried once: the batches are the fallback, not a second exclusive lock).
    The groups inside are the usual batches (a team's version bump and audit event each), only
    committed together; `result` counts them once that commit is done, while progress is
    reported as each group is written."""
    total = sum(len(c.user_external_ids) for c in changes)
    ordered = sorted(changes, key=lambda c: team_ids[c.team_external_id])
    staged = ApplyResult()

    def write(s: Session) -> bool:
        staged.applied.clear()  # a retried transaction counts again
        with pg_rebuild.memberships_rebuilt(s, total) as rebuilt:
            if rebuilt:
                here = lambda w: w(s)  # noqa: E731
                batch = FIRST_LOAD_BATCH
                _members(engine, actor, ordered, user_ids, team_ids, staged, tick, run=here, limit=batch)
        return rebuilt

    try:
        if not _transaction(engine, write, bulk=actor, attempts=1):
            return False
    except (Conflict, DBAPIError) as exc:
        if not _lost_race(exc):
            raise
        # a concurrent writer (on-login, SCIM) locked a user or team row, then waited for the
        # table this load held exclusively; the batches take only the share of the table every
        # writer takes, so they cannot meet that cycle
        log.info("a first load of memberships lost a race, writing it in batches: %s", exc)
        return False
    for kind, n in staged.applied.items():
        result.add(kind, n)
    return True


def _members(
    engine: Engine,
    actor: Actor,
    changes: list[MemberChange],
    user_ids: dict[str, str],
    team_ids: dict[str, str],
    result: ApplyResult,
    tick: ApplyProgress,
    *,
    run: Callable[[Callable[[Session], dict[str, list[str]]]], dict[str, list[str]]] | None = None,
    limit: int | None = None,
) -> None:
    """Member changes of one kind, `limit` (default `member_batch(engine)`) memberships
    (across teams) per transaction (`run`, when given, runs each batch's write instead: in its
    caller's transaction).

    A team's changes stay in one batch (one version bump, one audit event listing the user
    ids) unless they alone exceed the batch; then it gets one per batch, as that many
    `change_members` calls would give it.
    """
    if not changes:
        return
    kind = changes[0].kind
    op = bulk.add_memberships if kind == "add_members" else bulk.remove_memberships
    limit = limit or member_batch(engine)
    total = sum(len(c.user_external_ids) for c in changes)
    done = 0
    batch: list[tuple[str, list[str]]] = []  # (team id, user ids): pairs without a tuple each
    size = 0
    if run is None:
        run = lambda write: _transaction(engine, write, bulk=actor)  # noqa: E731

    def flush() -> None:
        nonlocal size
        # a generator per try: `_transaction` may run the write again
        pairs = lambda: chain.from_iterable(zip(repeat(t), us) for t, us in batch)  # noqa: E731
        changed = run(lambda s: op(s, actor=actor, pairs=pairs()))
        result.add(kind, sum(len(v) for v in changed.values()))
        tick("members", done, total)
        batch.clear()
        size = 0

    for c in changes:
        team_id = team_ids[c.team_external_id]
        if size and size + len(c.user_external_ids) > limit:
            flush()  # keep a team's changes in one batch: one version bump, one audit event
        known = list(filter(None, map(user_ids.get, c.user_external_ids)))  # store ids are never ''
        done += len(c.user_external_ids)
        while size + len(known) >= limit:  # a team larger than a batch: one per batch
            batch.append((team_id, known[: limit - size]))
            known = known[limit - size :]
            size = limit
            flush()
        if known:
            batch.append((team_id, known))
            size += len(known)
    if size:
        flush()
    elif done:
        tick("members", done, total)


def batch_size(engine: Engine) -> int:
    """Users or teams per transaction: `BATCH` if set, else the store's `BATCHES`."""
    return BATCH or BATCHES[engine.dialect.name]


def member_batch(engine: Engine) -> int:
    """Memberships per transaction: `MEMBER_BATCH` if set, else the store's `MEMBER_BATCHES`."""
    return MEMBER_BATCH or MEMBER_BATCHES[engine.dialect.name]
