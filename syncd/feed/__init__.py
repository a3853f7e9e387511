"""The change feed: an ordered, durable log of every change the service layer commits.

Writing (service layer only): `syncd.feed.writer.record(session, directory=, actor=,
events=)` adds `changes` rows in the same transaction as the change itself; the audit funnel
(`syncd.service.audit.record`) and the bulk apply path call it. A rolled-back transaction
leaves no change; a committed one always has its changes.

Kinds (`syncd.feed.kinds`): user.created, user.updated, user.deactivated, user.reactivated,
user.deleted, team.created, team.renamed, team.updated, team.archived, team.unarchived,
team.deleted, team.members_added, team.members_removed. Each change carries its directory,
resource type, id and name (userName / displayName), `data` (member changes:
`{"members": [{"id", "userName"}]}`, the userName as of reading, null once deleted;
updates: `{"changed": [attribute, ...]}`), the actor,
its time and its position. Bulk member writes give one member change per team per batch.

Reading (any number of readers, each with its own cursor):
- `read(bind, *, after, limit, directories=None) -> FeedPage(changes, next)`: changes after
  the position `after`, oldest first; `next` is where to continue. `bind` is an Engine, a
  Connection or a Session. Never skips a committed change (see `syncd.feed.reader`).
- `head(bind)`: the position to follow from after a resync that starts reading after it.
- `oldest_retained(bind)`: positions before it were pruned (`read` raises `FeedGone`).
- `lag(bind, *, after, directories=None) -> Lag(changes, seconds)`.
- `prune(session, *, older_than)`: retention (the daemon calls it).
- `shared_signal(engine)` (one per engine and process; `ChangeSignal(engine).start()` for
  your own): wakes waiting readers after commits (in process, and via
  PostgreSQL LISTEN/NOTIFY across replicas); `wait(timeout, since=)` / `wait_async(...)`.
- `wait_for_changes(...)` / `await_changes(...)`: `read` that long-polls up to `timeout`.
- Cursors: `load_cursor(session, consumer)` / `save_cursor(session, consumer, position)`
  keep a reader's position in the store (`feed_cursors`).

Positions are opaque strings; compare them only through this module (`Position.parse`).
Delivery is at-least-once: a reader saves its cursor after acting, so it may see a change
again after a crash and must act idempotently.
"""

from syncd.feed.cursors import load_cursor, save_cursor
from syncd.feed.kinds import KINDS
from syncd.feed.position import START, BadPosition, Position
from syncd.feed.reader import FeedChange, FeedGone, FeedPage, Lag, head, lag, oldest_retained, prune, read
from syncd.feed.signal import ChangeSignal, shared_signal, stop_shared
from syncd.feed.wait import await_changes, wait_for_changes

__all__ = [
    "KINDS",
    "START",
    "BadPosition",
    "ChangeSignal",
    "FeedChange",
    "FeedGone",
    "FeedPage",
    "Lag",
    "Position",
    "await_changes",
    "head",
    "lag",
    "load_cursor",
    "oldest_retained",
    "prune",
    "read",
    "save_cursor",
    "shared_signal",
    "stop_shared",
    "wait_for_changes",
]
