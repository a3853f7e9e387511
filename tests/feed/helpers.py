"""Feed test helpers. On PostgreSQL the feed withholds changes while an older transaction
anywhere in the database is open (other tests share the server), so tests wait for the
feed to settle instead of assuming a commit is readable at once."""

from __future__ import annotations

import time

from sqlalchemy import Engine, text

from syncd import feed


def settled_head(engine: Engine, timeout: float = 60.0) -> str:
    """The head, once every change committed so far is readable."""
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as c:
            row = c.execute(text("SELECT xid, id FROM changes ORDER BY xid DESC, id DESC LIMIT 1")).first()
        last = feed.Position(row[0], row[1]) if row else feed.START
        head = feed.head(engine)
        if feed.Position.parse(head) >= last:
            return head
        if time.monotonic() > deadline:
            raise AssertionError(f"the feed did not settle: head {head}, last written {last}")
        time.sleep(0.05)


def read_all(engine: Engine, after: str | None = None, **kw: object) -> feed.FeedPage:
    """Every change after `after`, once the feed settled (one page of up to 10 000)."""
    settled_head(engine)
    return feed.read(engine, after=after, limit=10_000, **kw)  # type: ignore[arg-type]
