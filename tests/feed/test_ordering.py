"""The feed never skips a committed change (DESIGN safety rule 7), though ids are not
commit-ordered on PostgreSQL: two real transactions interleaved by hand, and concurrent
writers followed by a reader on both stores."""

from __future__ import annotations

import random
import threading
import time
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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
        assert _names(first) == [] and first.pending  # b@x is committed, withheld behind A
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


#: each transaction's steps (begin takes its xid; two writes; commit); "r" is a read
STEPS = [(k, step) for k in range(3) for step in ("begin", "write", "write", "end")] + [(None, "read")] * 4


def _schedule(order: list[int]) -> list[tuple[int | None, str]]:
    """A permutation of STEPS' slots, each transaction's steps kept in their own order."""
    seen: dict[int | None, int] = {}
    out = []
    for i in order:
        k = STEPS[i][0]
        steps = [s for kk, s in STEPS if kk == k]
        out.append((k, steps[seen.get(k, 0)]))
        seen[k] = seen.get(k, 0) + 1
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(range(len(STEPS))), rollback=st.lists(st.booleans(), min_size=3, max_size=3))
def test_any_interleaving_of_transactions_is_read_once_each_with_no_skip(
    engine: Engine, order: list[int], rollback: list[bool]
) -> None:
    """Three transactions begin (taking an xid on PostgreSQL), write and commit or roll back
    in any interleaving while a reader follows the feed: it sees each committed change once."""
    if engine.dialect.name != "postgresql":
        pytest.skip("on SQLite a writer holds the write lock until commit: no interleaving")
    with session_scope(engine) as s:
        ensure_directory(s, name="d", kind="scim")
    pos: str | None = settled_head(engine)
    sessions: dict[int, Session] = {}
    committed: list[str] = []
    written: dict[int, list[str]] = {}
    seen: list[str | None] = []
    try:
        for k, step in _schedule(order):
            if step == "read":
                page = feed.read(engine, after=pos, limit=2)
                seen += _names(page)
                pos = page.next
            elif step == "begin":
                assert k is not None
                sessions[k] = Session(engine, expire_on_commit=False)
                sessions[k].execute(text("SELECT pg_current_xact_id()"))
                written[k] = []
            elif step == "write":
                assert k is not None
                name = f"p{uuid.uuid4().hex[:8]}@x"
                users.create_user(sessions[k], actor=D, body={"userName": name})
                written[k].append(name)
            else:
                assert k is not None
                s = sessions.pop(k)
                if rollback[k]:
                    s.rollback()
                else:
                    s.commit()
                    committed.extend(written[k])
                s.close()
    finally:
        for s in sessions.values():
            s.rollback()
            s.close()
    seen += _names(read_all(engine, pos))
    assert sorted(seen) == sorted(committed) and len(seen) == len(set(seen))
