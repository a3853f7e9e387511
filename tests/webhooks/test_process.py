"""`syncd run` as a real process: its webhook worker delivers what SCIM writes commit, a
long-poll of GET /v1/changes answers through uvicorn, and after a SIGKILL mid-retry the
restarted daemon resumes from the stored cursor: every change delivered, in order, the
only repeat being the event that was in flight (same webhook-id)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import httpx

from syncd import feed
from syncd.service import users
from syncd.service.context import Actor
from syncd.store import session_scope
from tests.daemon.helpers import Daemon, sqlite_setup, wait_for
from tests.webhooks.receiver import receiver


def scim_user(d: Daemon, token: str, name: str) -> None:
    r = httpx.post(
        f"{d.url}/scim/v2/Users",
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert r.status_code == 201, r.text


def test_the_daemon_delivers_webhooks_and_resumes_after_sigkill(tmp_path: Path) -> None:
    with receiver() as rcv:
        hook = (
            f'\n[webhooks.proc]\nurl = "{rcv.url}"\nsecret = "{rcv.secret}"\n'
            'events = ["user.created"]\nbackoff = "1s"\nmax_attempts = 50\n'
        )
        engine, cfg, admin, scim = sqlite_setup(tmp_path, hook)
        d = Daemon(cfg, tmp_path / "daemon-1.log").wait_ready()
        try:
            wait_for(lambda: _cursor(engine) is not None, what="the webhook's cursor", proc=d)
            head = _cursor(engine)
            # a long-poll through uvicorn answers when a SCIM write commits
            got: dict[str, Any] = {}
            poll = threading.Thread(
                target=lambda: got.update(
                    r=httpx.get(
                        f"{d.admin_url}/v1/changes",
                        params={"after": head, "wait": "50s"},
                        headers={"Authorization": f"Bearer {admin}"},
                        timeout=60,
                    )
                )
            )
            poll.start()
            for i in range(5):
                scim_user(d, scim, f"a{i}@x")
            poll.join(60)
            assert got["r"].status_code == 200 and got["r"].json()["changes"][0]["resource"]["name"] == "a0@x"
            wait_for(lambda: len(rcv.delivered()) == 5, what="5 deliveries", proc=d)
            # the receiver fails; kill -9 the daemon while it retries b0@x
            rcv.answer = lambda _i, _p: (503, {})
            scim_user(d, scim, "b0@x")
            wait_for(lambda: len(rcv.received) >= 7, what="a retried delivery", proc=d)
        finally:
            d.stop(signal.SIGKILL)
        with session_scope(engine) as s:  # written while the daemon is down
            for i in range(1, 4):
                users.create_user(s, actor=Actor("scim", "push", "t"), body={"userName": f"b{i}@x"})
        rcv.answer = lambda _i, _p: (200, {})
        d2 = Daemon(cfg, tmp_path / "daemon-2.log").wait_ready()
        try:
            wait_for(lambda: len(rcv.delivered()) == 9, what="9 deliveries", proc=d2)
        finally:
            assert d2.stop() == 0
        names = [r.payload["data"]["resource"]["name"] for r in rcv.delivered()]
        assert names == [f"a{i}@x" for i in range(5)] + [f"b{i}@x" for i in range(4)]
        assert not rcv.rejected
        retried = {r.msg_id for r in rcv.received if r.status == 503}
        assert len(retried) == 1 and retried == {rcv.delivered()[5].msg_id}
        assert feed.Position.parse(_cursor(engine) or "") > feed.Position.parse(head or "")


def _cursor(engine: Any) -> str | None:
    with session_scope(engine, write=False) as s:
        return feed.load_cursor(s, "webhook:proc")
