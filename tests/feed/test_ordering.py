"""The feed never skips a committed change (DESIGN safety rule 7), though ids are not
commit-ordered on PostgreSQL: two real transactions interleaved by hand, and concurrent
writers followed by a reader on both stores."""

from __future__ import annotations

import random
import threading
import time

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from syncd import feed
from syncd.service import users
from syncd.service.context import Actor
from syncd.service.tokens import ensure_directory
from syncd.store import session_scope
from tests.feed.helpers import read_all, settled_head

D = Actor("scim", "d", "t")


def _dir(engine: Engine) -> None:
    with session_scope(engine) as s:
        ensure_directory(s, name="d", kind="scim")


def _names(page: feed.FeedPage) -> list[str | None]:
    return [c.name for c in page.changes]


def test_a_change_committed_after_a_later_one_is_not_skipped_on_postgresql(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers: id order is commit order there")
    _dir(engine)
    start = settled_head(engine)
    a = Session(engine, expire_on_commit=False)
    try:
        # A takes the smaller id and stays open; B takes the next id and commits first
        users.create_user(a, actor=D, body={"userName": "a@x"})
        a_id = a.execute(text("SELECT max(id) FROM changes")).scalar_one()
        with session_scope(engine) as b:
            users.create_user(b, actor=D, body={"userName": "b@x"})
        with engine.connect() as c:
            b_id = c.execute(text("SELECT max(id) FROM changes")).scalar_one()
        assert a_id < b_id
        first = feed.read(engine, after=start, limit=10)
        # a reader that returned b@x now, and its id as position, would never see a@x
        assert _names(first) == []
        a.commit()
    finally:
        a.close()
    second = read_all(engine, first.next)
    assert _names(second) == ["a@x", "b@x"]


def test_a_transaction_with_the_older_xid_and_the_larger_id_is_read_first(engine: Engine) -> None:
    """Positions are (xid, id), not id: the older transaction's change, though written later
    (larger id), precedes the younger transaction's that committed first."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL transaction ids")
    _dir(engine)
    start = settled_head(engine)
    old = Session(engine, expire_on_commit=False)
    try:
        old.execute(text("SELECT pg_current_xact_id()"))  # `old` takes the smaller xid
        with session_scope(engine) as young:
            users.create_user(young, actor=D, body={"userName": "young@x"})  # the smaller id
        assert _names(feed.read(engine, after=start, limit=10)) == []
        users.create_user(old, actor=D, body={"userName": "old@x"})  # the larger id
        old.commit()
    finally:
        old.close()
    page = read_all(engine, start)
    assert _names(page) == ["old@x", "young@x"]
    assert page.changes[0].id > page.changes[1].id


def test_a_reader_following_concurrent_writers_sees_every_change_once(engine: Engine) -> None:
    _dir(engine)
    writers, per_writer = 6, 15
    done = threading.Event()
    errors: list[BaseException] = []

    def write(w: int) -> None:
        rnd = random.Random(w)
        try:
            for i in range(per_writer):
                with session_scope(engine) as s:
                    users.create_user(s, actor=D, body={"userName": f"w{w}-{i}@x"})
                    time.sleep(rnd.random() * 0.01)  # hold the transaction open a little
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    seen: list[str | None] = []
    pos: str | None = None
    watcher = threading.Thread(target=lambda: ([t.join() for t in threads], done.set()))
    watcher.start()
    while True:
        finished = done.is_set()
        page = feed.read(engine, after=pos, limit=7)
        seen += _names(page)
        pos = page.next
        if finished and not page.changes:
            seen += _names(read_all(engine, pos))
            break
    watcher.join()
    assert not errors
    expected = {f"w{w}-{i}@x" for w in range(writers) for i in range(per_writer)}
    assert len(seen) == len(expected) and set(seen) == expected
