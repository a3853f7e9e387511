"""`apply._transaction`: a bulk batch runs with the cyclic collector paused, and the collector
is back as it was once the batch is over, committed or failed; other writes leave it alone."""

from __future__ import annotations

import gc

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from syncd.reconcile import apply
from syncd.service import tokens
from syncd.service.context import Actor
from syncd.store import session_scope

ACTOR = Actor("pull", "d", "d", sync_run_id=None)


@pytest.fixture
def store(engine: Engine) -> Engine:
    with session_scope(engine) as s:
        tokens.ensure_directory(s, name="d", kind="graph")
    return engine


def test_a_bulk_batch_runs_with_the_collector_paused(store: Engine) -> None:
    assert gc.isenabled()
    assert apply._transaction(store, lambda s: gc.isenabled(), bulk=ACTOR) is False
    assert gc.isenabled()
    assert apply._transaction(store, lambda s: gc.isenabled()) is True


def test_the_collector_is_back_after_a_failed_bulk_batch(store: Engine) -> None:
    def fail(s: Session) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        apply._transaction(store, fail, bulk=ACTOR)
    assert gc.isenabled()
