"""SCIM end-to-end fixtures: a real uvicorn server on 127.0.0.1 over a migrated store, on
SQLite and on PostgreSQL, driven with httpx.

One store and one server per test module and backend (starting them per test would spend most
of the run in migrations); tests stay independent because each gets a token of a directory of
its own, and a token sees nothing of any other directory.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from connectors.testing.server import ServerThread, free_port
from syncd.scim import create_app
from syncd.service import tokens
from syncd.store import session_scope
from syncd.store.engine import make_engine, upgrade
from tests.conftest import BACKENDS, migrated_store
from tests.scim.helpers import Scim


@pytest.fixture(scope="module", params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A migrated, empty store on each backend, shared by one test module."""
    with migrated_store(request.param, tmp_path_factory.mktemp("scim")) as eng:
        yield eng


@pytest.fixture(scope="module")
def server(store: Engine) -> Iterator[ServerThread]:
    """The SCIM app under uvicorn; its public URL is its real address."""
    port = free_port()
    app = create_app(store, public_url=f"http://127.0.0.1:{port}")
    srv = ServerThread(app, port=port).start()
    yield srv
    srv.stop()


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite file of this test alone (for tests that need no PostgreSQL twin)."""
    eng = make_engine(f"sqlite:///{tmp_path / 'syncd.db'}")
    upgrade(eng)
    yield eng
    eng.dispose()


def new_token(engine: Engine, directory: str, **kw: object) -> str:
    with session_scope(engine) as s:
        _, secret = tokens.create_token(s, directory=directory, name="test", **kw)  # type: ignore[arg-type]
    return secret


def client_for(server: ServerThread, secret: str | None, *, suffix: str = "") -> httpx.Client:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return httpx.Client(base_url=f"{server.url}/scim/v2{suffix}", headers=headers, timeout=30)


@pytest.fixture
def directory() -> str:
    return f"d-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def scim(server: ServerThread, store: Engine, directory: str) -> Iterator[Scim]:
    """A client with a token of a fresh directory."""
    with client_for(server, new_token(store, directory)) as c:
        yield Scim(c, directory)


@pytest.fixture
def other(server: ServerThread, store: Engine) -> Iterator[Scim]:
    """A client of a second fresh directory."""
    name = f"o-{uuid.uuid4().hex[:10]}"
    with client_for(server, new_token(store, name)) as c:
        yield Scim(c, name)
