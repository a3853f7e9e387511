"""`GET /v1/changes`, `/v1/users`, `/v1/teams` of the daemon's admin API, in process on both
stores: paging, long-poll, 410 and the resync it asks for, and the daemon's webhook workers."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from syncd import feed
from syncd.config import parse_config
from syncd.daemon.app import build_app
from syncd.daemon.main import Daemon
from syncd.service import teams, tokens, users
from syncd.service.context import Actor
from syncd.store import session_scope
from syncd.store.models import utcnow
from tests.feed.helpers import settled_head
from tests.webhooks.receiver import receiver

A = Actor("pull", "dir-a", "entra")


@dataclass
class Api:
    client: TestClient
    daemon: Daemon
    engine: Engine
    token: str

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(path, params=params, headers={"Authorization": f"Bearer {self.token}"})


def settings(engine: Engine, tmp: Path, extra: str = "") -> Any:
    url = engine.url.render_as_string(hide_password=False)
    return parse_config(f'state_dir = "{tmp}"\n[store]\nurl = "{url}"\n{extra}')


@pytest.fixture
def api(engine: Engine, tmp_path: Path) -> Iterator[Api]:
    with session_scope(engine) as s:
        tokens.ensure_directory(s, name="dir-a", kind="graph")
        tokens.ensure_directory(s, name="dir-b", kind="graph")
        _, secret = tokens.create_token(s, directory=None, kind="admin", name="t")
    daemon = Daemon(settings(engine, tmp_path), engine)
    app = build_app(daemon.state, public_url="http://testserver", max_body_bytes=1 << 20)
    try:
        with TestClient(app) as client:
            yield Api(client, daemon, engine, secret)
    finally:
        daemon.finish()


def add_users(engine: Engine, *names: str, actor: Actor = A) -> list[str]:
    out = []
    with session_scope(engine) as s:
        for n in names:
            out.append(users.create_user(s, actor=actor, body={"userName": n}).id)
    return out


def test_changes_page_by_next_and_filter_by_directory(api: Api) -> None:
    add_users(api.engine, "a1@x", "a2@x")
    add_users(api.engine, "b1@x", actor=Actor("pull", "dir-b", "okta"))
    settled_head(api.engine)
    r = api.get("/v1/changes", limit=2)
    assert r.status_code == 200
    body = r.json()
    assert [c["resource"]["name"] for c in body["changes"]] == ["a1@x", "a2@x"]
    assert body["changes"][0]["kind"] == "user.created" and body["changes"][0]["directory"] == "dir-a"
    rest = api.get("/v1/changes", after=body["next"]).json()
    assert [c["resource"]["name"] for c in rest["changes"]] == ["b1@x"]
    assert api.get("/v1/changes", after=rest["next"]).json() == {"changes": [], "next": rest["next"]}
    only_b = api.get("/v1/changes", directory="dir-b").json()
    assert [c["resource"]["name"] for c in only_b["changes"]] == ["b1@x"]


def test_a_waiting_request_answers_when_a_change_commits(api: Api) -> None:
    head = settled_head(api.engine)
    got: dict[str, Any] = {}
    t = threading.Thread(target=lambda: got.update(r=api.get("/v1/changes", after=head, wait="60s")))
    t.start()
    time.sleep(0.3)  # let the request start waiting (if it has not, it reads the change at once)
    add_users(api.engine, "late@x")
    t.join(90)
    assert got["r"].status_code == 200
    assert [c["resource"]["name"] for c in got["r"].json()["changes"]] == ["late@x"]


def test_errors_bad_position_bad_wait_and_auth(api: Api) -> None:
    assert api.get("/v1/changes", after="nope").status_code == 400
    r = api.get("/v1/changes", wait="forever")
    assert r.status_code == 400 and "wait" in r.json()["detail"]
    assert api.get("/v1/changes", wait="1h").status_code == 400
    assert api.client.get("/v1/changes").status_code == 401
    assert api.get("/v1/users", cursor="garbage").status_code == 400
    assert api.get("/v1/teams", include="owners").status_code == 400


def test_a_position_older_than_retention_answers_410_and_the_resync_catches_up(api: Api) -> None:
    ids = add_users(api.engine, "u1@x", "u2@x", "u3@x")
    old = settled_head(api.engine)
    with session_scope(api.engine) as s:
        t = teams.create_team(s, actor=A, body={"displayName": "eng", "members": [{"value": i} for i in ids]})
    settled_head(api.engine)
    with session_scope(api.engine) as s:
        feed.prune(s, older_than=utcnow() + timedelta(seconds=1))
    r = api.get("/v1/changes", after=old)
    assert r.status_code == 410
    gone = r.json()
    assert "resync" in gone["detail"] and gone["resync"] == ["/v1/users", "/v1/teams?include=members"]
    # resync: page through users (2 a page) while a change commits between pages
    first = api.get("/v1/users", limit=2).json()
    position = first["position"]
    add_users(api.engine, "during@x")
    names = [u["userName"] for u in first["users"]]
    nxt = first["next"]
    while nxt:
        page = api.get("/v1/users", limit=2, cursor=nxt).json()
        assert page["position"] == position
        names += [u["userName"] for u in page["users"]]
        nxt = page["next"]
    assert {"u1@x", "u2@x", "u3@x"} <= set(names)
    tl = api.get("/v1/teams", directory="dir-a", include="members").json()
    assert [(x["displayName"], x["memberCount"]) for x in tl["teams"]] == [("eng", 3)]
    assert {m["userName"] for m in tl["teams"][0]["members"]} == {"u1@x", "u2@x", "u3@x"}
    assert tl["teams"][0]["id"] == t.id and "members" not in api.get("/v1/teams").json()["teams"][0]
    # following the feed from the listing's position misses nothing committed after it
    settled_head(api.engine)
    after = api.get("/v1/changes", after=position).json()
    assert "during@x" in [c["resource"]["name"] for c in after["changes"]]


def test_the_daemon_runs_a_worker_per_webhook(engine: Engine, tmp_path: Path) -> None:
    with session_scope(engine) as s:
        tokens.ensure_directory(s, name="dir-a", kind="graph")
    with receiver() as rcv:
        name = f"hook-{uuid.uuid4().hex[:8]}"  # lock keys are database-wide: unique per test
        extra = f'[webhooks.{name}]\nurl = "{rcv.url}"\nsecret = "{rcv.secret}"\nevents = ["user.created"]\n'
        daemon = Daemon(settings(engine, tmp_path, extra), engine)
        try:
            daemon.ready()
            # the worker starts at the head: wait until it saved its cursor, then write
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with session_scope(engine, write=False) as s:
                    if feed.load_cursor(s, f"webhook:{name}") is not None:
                        break
                time.sleep(0.05)
            add_users(engine, "hooked@x")
            while time.monotonic() < deadline and not rcv.delivered():
                time.sleep(0.05)
            assert [r.payload["data"]["resource"]["name"] for r in rcv.delivered()] == ["hooked@x"]
            assert not rcv.rejected
            # the worker counts a delivery once it saved its cursor, just after the receiver answered
            while True:
                fams = {f.name: f for f in text_string_to_metric_families(daemon.metrics.render().decode())}
                sent = [
                    x.value
                    for x in fams["syncd_webhook_deliveries"].samples
                    if x.name.endswith("_total") and x.labels == {"webhook": name, "outcome": "delivered"}
                ]
                if sent or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert sent == [1.0]
            assert [x.value for x in fams["syncd_webhook_dead_letters"].samples] == [0.0]
        finally:
            daemon.finish()
