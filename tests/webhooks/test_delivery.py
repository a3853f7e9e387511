"""Webhook delivery on both stores against a real HTTP receiver that verifies Standard
Webhooks signatures: order, event filters, backoff, dead letters, restarts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from syncd import feed
from syncd.config.delivery import WebhookSettings
from syncd.feed import ChangeSignal
from syncd.service import teams, users
from syncd.service.context import Actor
from syncd.service.tokens import ensure_directory
from syncd.store import session_scope
from syncd.store.models import FeedCursor
from syncd.webhooks.sender import backoff
from syncd.webhooks.status import dead_letters, statuses
from syncd.webhooks.worker import Stopped, WebhookWorker, consumer
from tests.feed.helpers import settled_head
from tests.webhooks.receiver import Receiver, receiver

A = Actor("pull", "dir-a", "entra")


def hook(rcv: Receiver, **kw: Any) -> WebhookSettings:
    return WebhookSettings.model_validate({"url": rcv.url, "secret": rcv.secret, **kw})


@pytest.fixture
def store(engine: Engine) -> Iterator[Engine]:
    with session_scope(engine) as s:
        ensure_directory(s, name="dir-a", kind="graph")
        ensure_directory(s, name="dir-b", kind="graph")
    yield engine


def worker(engine: Engine, name: str, settings: WebhookSettings, **kw: Any) -> WebhookWorker:
    return WebhookWorker(engine, name, settings, signal=ChangeSignal(), backoff_unit=0.001, **kw)


def drain(engine: Engine, w: WebhookWorker) -> None:
    """Step the worker until its cursor reaches the settled head of the feed."""
    head = feed.Position.parse(settled_head(engine))
    for _ in range(1000):
        with session_scope(engine, write=False) as s:
            row = s.get(FeedCursor, w.consumer)
        if row is not None and feed.Position.parse(row.position) >= head:
            return
        w.step(wait=0.2)
    raise AssertionError("the worker did not catch up")


def make_users(engine: Engine, *names: str, actor: Actor = A) -> list[str]:
    ids = []
    for n in names:
        with session_scope(engine) as s:
            ids.append(users.create_user(s, actor=actor, body={"userName": n}).id)
    return ids


def test_changes_arrive_signed_in_feed_order_and_only_the_subscribed_kinds(store: Engine) -> None:
    with receiver() as rcv:
        w = worker(store, "all", hook(rcv))
        only = worker(store, "offboard", hook(rcv, events=["user.deactivated"]))
        w.position(), only.position()  # both start at the head: nothing before this is sent
        (ann, bob) = make_users(store, "ann@x", "bob@x")
        with session_scope(store) as s:
            t = teams.create_team(s, actor=A, body={"displayName": "eng", "members": [{"value": ann}]})
            users.set_active(s, actor=A, user_id=bob, active=False)
        with session_scope(store) as s:
            teams.change_members(s, actor=A, team_id=t.id, remove=[ann])
        drain(store, w)
        drain(store, only)
        assert not rcv.rejected
        got = [(r.payload["type"], r.payload["data"]["resource"]["name"]) for r in rcv.delivered()]
        # `w` delivered everything first, then `only` its one subscribed event
        assert got == [
            ("user.created", "ann@x"),
            ("user.created", "bob@x"),
            ("team.created", "eng"),
            ("team.members_added", "eng"),
            ("user.deactivated", "bob@x"),
            ("team.members_removed", "eng"),
            ("user.deactivated", "bob@x"),
        ]
        first = rcv.delivered()[0]
        assert first.msg_id.startswith("chg_") and first.payload["data"]["directory"] == "dir-a"
        assert rcv.delivered()[3].payload["data"]["data"]["members"] == [{"id": ann, "userName": "ann@x"}]
        assert len({r.msg_id for r in rcv.delivered()[:6]}) == 6
        with session_scope(store, write=False) as s:
            st = {x.name: x for x in statuses(s, {"all": w.settings, "offboard": only.settings})}
        assert st["all"].delivered == 6 and st["offboard"].delivered == 1
        assert st["all"].lag_changes == 0 and st["all"].dead_letters == 0


def test_a_failing_receiver_gets_the_same_event_again_until_it_accepts_it(store: Engine) -> None:
    with receiver() as rcv:
        answers = iter([503, 500, 200])
        rcv.answer = lambda _i, _p: (next(answers, 200), {})
        w = worker(store, "flaky", hook(rcv, max_attempts=5))
        w.position()
        make_users(store, "ann@x", "bob@x")
        drain(store, w)
        ids = [r.msg_id for r in rcv.received]
        assert [r.status for r in rcv.received] == [503, 500, 200, 200]
        assert ids[0] == ids[1] == ids[2] != ids[3]
        assert rcv.types() == ["user.created", "user.created"]
        with session_scope(store, write=False) as s:
            row = s.get(FeedCursor, consumer("flaky"))
            assert row is not None and row.attempts == 0 and row.last_error is None and row.delivered == 2


def test_an_event_that_keeps_failing_goes_to_the_dead_letters_and_delivery_goes_on(store: Engine) -> None:
    with receiver() as rcv:
        rcv.answer = lambda _i, p: (500 if p["data"]["resource"]["name"] == "bad@x" else 200, {})
        w = worker(store, "dl", hook(rcv, max_attempts=3))
        w.position()
        make_users(store, "ann@x", "bad@x", "cid@x")
        drain(store, w)
        assert [r.payload["data"]["resource"]["name"] for r in rcv.delivered()] == ["ann@x", "cid@x"]
        assert sum(1 for r in rcv.received if r.status == 500) == 3
        with session_scope(store, write=False) as s:
            dead = dead_letters(s, "dl")
            st = statuses(s, {"dl": w.settings})[0]
        assert len(dead) == 1 and dead[0].attempts == 3 and dead[0].error.startswith("HTTP 500")
        assert dead[0].payload["data"]["resource"]["name"] == "bad@x"
        assert st.dead_letters == 1 and st.delivered == 2 and st.attempts == 0


def test_a_restarted_worker_resumes_from_its_cursor_and_keeps_counting_failures(store: Engine) -> None:
    with receiver() as rcv:
        w = worker(store, "r", hook(rcv, max_attempts=4))
        w.position()
        make_users(store, "ann@x", "bob@x")
        drain(store, w)
        # the receiver goes down; the worker fails twice, then is stopped mid-backoff
        stop = threading.Event()
        calls = {"n": 0}

        def down(_i: str, _p: dict[str, Any]) -> tuple[int, dict[str, str]]:
            calls["n"] += 1
            if calls["n"] == 2:
                stop.set()
            return 502, {}

        rcv.answer = down
        make_users(store, "cid@x")
        settled_head(store)
        w2 = worker(store, "r", hook(rcv, max_attempts=4), stop=stop)
        with pytest.raises(Stopped):
            for _ in range(100):
                w2.step(wait=0.2)
        with session_scope(store, write=False) as s:
            row = s.get(FeedCursor, consumer("r"))
            assert row is not None and row.attempts == 2 and (row.last_error or "").startswith("HTTP 502")
        # a new worker (a restarted daemon) sends only what was not acknowledged
        rcv.answer = lambda _i, _p: (200, {})
        make_users(store, "dee@x")
        w3 = worker(store, "r", hook(rcv, max_attempts=4))
        drain(store, w3)
        names = [r.payload["data"]["resource"]["name"] for r in rcv.delivered()]
        assert names == ["ann@x", "bob@x", "cid@x", "dee@x"]


def test_a_failure_count_kept_across_a_restart_still_ends_in_the_dead_letters(store: Engine) -> None:
    with receiver() as rcv:
        rcv.answer = lambda _i, _p: (500, {})
        w = worker(store, "k", hook(rcv, max_attempts=3))
        w.position()
        make_users(store, "ann@x")
        settled_head(store)
        with session_scope(store) as s:  # two failures recorded by a previous process
            row = s.get(FeedCursor, consumer("k"))
            assert row is not None
            row.attempts = 2
            s.add(row)
        drain(store, w)
        assert len(rcv.received) == 1  # the third attempt, then the dead letter
        with session_scope(store, write=False) as s:
            assert len(dead_letters(s, "k")) == 1


def test_directory_filter_and_a_new_webhook_start_at_the_head(store: Engine) -> None:
    make_users(store, "before@x")
    with receiver() as rcv:
        w = worker(store, "b-only", hook(rcv, directories=["dir-b"]))
        w.position()
        make_users(store, "a@x")
        make_users(store, "b@x", actor=Actor("pull", "dir-b", "okta"))
        drain(store, w)
        assert [r.payload["data"]["resource"]["name"] for r in rcv.delivered()] == ["b@x"]


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [(1, None, 1.0), (2, None, 2.0), (4, None, 8.0), (20, None, 300.0), (1, 30.0, 30.0), (1, 9999.0, 300.0)],
)
def test_backoff_doubles_up_to_the_cap_and_honours_retry_after(
    attempt: int, retry_after: float | None, expected: float
) -> None:
    assert backoff(attempt, base=1.0, cap=300.0, retry_after=retry_after) == expected


def test_a_cursor_behind_retention_skips_to_the_oldest_kept_and_says_so(store: Engine) -> None:
    from datetime import timedelta

    from syncd.store.models import utcnow

    with receiver() as rcv:
        w = worker(store, "late", hook(rcv))
        w.position()
        make_users(store, "gone@x")
        settled_head(store)
        with session_scope(store) as s:
            feed.prune(s, older_than=utcnow() + timedelta(seconds=1))
        make_users(store, "kept@x")
        drain(store, w)
        assert [r.payload["data"]["resource"]["name"] for r in rcv.delivered()] == ["kept@x"]
        with session_scope(store, write=False) as s:
            row = s.get(FeedCursor, consumer("late"))
        assert row is not None and row.delivered == 1


class RecordingStop(threading.Event):
    """A stop flag whose waits return at once and are recorded (the backoff delays)."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        return self.is_set()


def test_the_worker_waits_exponentially_longer_and_honours_retry_after(store: Engine) -> None:
    with receiver() as rcv:
        answers = iter([(500, {}), (500, {}), (429, {"Retry-After": "30"}), (500, {}), (200, {})])
        rcv.answer = lambda _i, _p: next(answers)
        stop = RecordingStop()
        w = WebhookWorker(
            store,
            "slow",
            hook(rcv, backoff="2s", max_backoff="60s", max_attempts=10),
            signal=ChangeSignal(),
            stop=stop,
        )
        w.position()
        make_users(store, "ann@x")
        settled_head(store)
        w.step(wait=0)
        assert stop.waits == [2.0, 4.0, 30.0, 16.0]
        assert rcv.types() == ["user.created"]
