"""On SQLite the provisioning hot path (filter by userName, POST /Users) runs on the event
loop's own thread (`store.inline`); a create whose writer turn is held elsewhere goes to the
threadpool and waits there, as any writer does. A real uvicorn server over a SQLite file."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from connectors.testing.server import ServerThread, free_port
from syncd.scim import create_app, resources
from syncd.service.schema import CORE_USER
from syncd.store.engine import writer_queue
from syncd.store.inline import WAIT_S
from tests.scim.conftest import new_token
from tests.scim.helpers import assert_error, ok, uniq


@pytest.fixture
def engine(sqlite_file: Engine) -> Engine:
    return sqlite_file


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions the resource layer handed to the threadpool."""
    seen: list[str] = []
    real = resources.run_in_threadpool

    async def recording(fn: Any, *args: Any, **kw: Any) -> Any:
        seen.append(fn.__name__)
        return await real(fn, *args, **kw)

    monkeypatch.setattr(resources, "run_in_threadpool", recording)
    return seen


@pytest.fixture
def http(engine: Engine) -> Iterator[httpx.Client]:
    port = free_port()
    srv = ServerThread(create_app(engine, public_url=f"http://127.0.0.1:{port}"), port=port).start()
    headers = {"Authorization": f"Bearer {new_token(engine, 'entra')}"}
    with httpx.Client(base_url=f"{srv.url}/scim/v2", headers=headers, timeout=30) as c:
        yield c
    srv.stop()


def body(name: str) -> dict[str, Any]:
    return {"schemas": [CORE_USER], "userName": name, "active": True,
            "emails": [{"value": name, "type": "work", "primary": True}]}


def test_filter_and_create_skip_the_threadpool(http: httpx.Client, hops: list[str]) -> None:
    name = f"{uniq()}@example.com"
    assert ok(http.get("/Users", params={"filter": f'userName eq "{name}"'}))["totalResults"] == 0
    created = ok(http.post("/Users", json=body(name)), 201)
    assert created["userName"] == name and created["emails"][0]["value"] == name
    found = ok(http.get("/Users", params={"filter": f'userName eq "{name}"'}))
    assert [r["id"] for r in found["Resources"]] == [created["id"]]
    assert_error(http.post("/Users", json=body(name)), 409, "uniqueness")  # inline, same funnel
    assert hops == []
    ok(http.get("/Users", params={"filter": 'displayName co "x"'}))  # not a key: threadpool
    assert hops == ["list_resources"]


def test_a_create_whose_turn_is_held_waits_in_the_threadpool(
    engine: Engine, http: httpx.Client, hops: list[str]
) -> None:
    """A pull (here, a thread) holds the writer turn for longer than the loop polls for it:
    the create goes to a worker thread, and meanwhile the loop still answers reads."""
    ok(http.get("/Users", params={"filter": 'userName eq "warm@example.com"'}))  # the token's
    # first use records it (a write): from here on it is served from the token cache
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with writer_queue(engine).turn():
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(5)
    name = f"{uniq()}@example.com"
    answer: list[httpx.Response] = []
    poster = threading.Thread(target=lambda: answer.append(http.post("/Users", json=body(name))))
    poster.start()
    threading.Event().wait(WAIT_S * 4)
    # the create is queued behind the holder; a read is served meanwhile
    assert ok(http.get("/Users", params={"filter": 'userName eq "nobody@example.com"'}))[
        "totalResults"] == 0
    assert not answer
    release.set()
    poster.join(10)
    holder.join()
    assert ok(answer[0], 201)["userName"] == name
    assert hops == ["create_resource"]
