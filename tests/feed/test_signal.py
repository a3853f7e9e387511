"""ChangeSignal: in-process wake-ups after commit, PostgreSQL LISTEN/NOTIFY, and waiting
without missing a bump that lands between a read and the wait."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from sqlalchemy import Engine, text

from syncd.feed import ChangeSignal
from syncd.feed.writer import CHANNEL
from syncd.service import users
from syncd.service.context import Actor
from syncd.service.tokens import ensure_directory
from syncd.store import session_scope


def test_a_commit_that_wrote_changes_wakes_signals_and_a_rollback_does_not(engine: Engine) -> None:
    sig = ChangeSignal()
    with session_scope(engine) as s:
        ensure_directory(s, name="d", kind="scim")
    gen = sig.generation
    with pytest.raises(RuntimeError), session_scope(engine) as s:
        users.create_user(s, actor=Actor("scim", "d"), body={"userName": "x@x"})
        raise RuntimeError
    assert sig.generation == gen
    with session_scope(engine) as s:
        users.create_user(s, actor=Actor("scim", "d"), body={"userName": "x@x"})
    assert sig.generation > gen
    assert sig.wait(0, since=gen)  # a bump after `since` returns at once


def test_wait_times_out_without_a_bump_and_async_waiters_wake() -> None:
    sig = ChangeSignal()
    assert sig.wait(0.01) is False

    async def main() -> bool:
        task = asyncio.ensure_future(sig.wait_async(30))
        await asyncio.sleep(0.05)
        threading.Thread(target=sig.bump).start()
        return await task

    assert asyncio.run(main()) is True


def test_postgresql_notify_from_another_connection_wakes_a_listening_signal(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    sig = ChangeSignal(engine).start()
    try:
        deadline = time.monotonic() + 30
        while sig._conn is None and time.monotonic() < deadline:  # listening
            time.sleep(0.02)
        gen = sig.generation
        with engine.begin() as c:  # what another replica's commit sends; no in-process hook runs
            c.execute(text("SELECT pg_notify(:c, '')"), {"c": CHANNEL})
        assert sig.wait(30, since=gen)
    finally:
        sig.stop()
