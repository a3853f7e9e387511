"""The page tests' fixture `console` (a test module imports `console_fixture`): the pages over
a real daemon state, with a fake Graph tenant pulled as directory "entra" (safety: at most 3
removals), a push directory "push", a delivery target that is not running, and the `engine`
store (SQLite and PostgreSQL). Not a conftest: console-auth's tests own that one.

Sign-in is not under test here: a middleware stands in for `syncd.console.auth` (it sets
`request.state.admin` and `csrf`) and `require_admin` is overridden with the same admin.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from syncd.config import parse_config
from syncd.console.deps import Admin, require_admin
from syncd.console.pages import PAGES
from syncd.daemon.main import Daemon
from tests.daemon.helpers import PATIENCE_S, start_fakes

ADMIN = Admin(subject="sub-1", name="Ada Admin", email="ada@example.com")
PUBLIC_URL = "https://scim.example.com"


@dataclass
class Console:
    client: TestClient
    daemon: Daemon
    engine: Engine
    fake: Any

    @property
    def state(self) -> Any:
        return self.daemon.state

    def sync(self, directory: str = "entra", **form: str) -> int:
        """Sync now through the console and wait for the run to end; the run's id."""
        r = self.client.post(f"/directories/{directory}/sync", data={"csrf": "t", **form})
        assert r.status_code == 303, r.text
        run_id = int(r.headers["location"].rsplit("/", 1)[1])
        self.wait_idle(directory)
        return run_id

    def wait_idle(self, directory: str = "entra") -> None:
        handle = self.state.runner.running(directory)
        if handle is not None:
            assert handle.done.wait(PATIENCE_S), "the sync did not end"


def build_app(state: Any) -> FastAPI:
    app = FastAPI()
    app.state.daemon = state

    @app.middleware("http")
    async def signed_in(request: Request, call_next: Any) -> Any:
        request.state.admin, request.state.csrf = ADMIN, "t"
        return await call_next(request)

    for name in PAGES:
        app.include_router(importlib.import_module(f"syncd.console.pages.{name}").router)
    app.dependency_overrides[require_admin] = lambda: ADMIN
    return app


@pytest.fixture(name="console")
def console_fixture(engine: Engine, tmp_path: Path) -> Iterator[Console]:
    with ExitStack() as stack:
        fakes = start_fakes(stack, tmp_path, {"entra": "graph"}, schedule="1h")
        url = engine.url.render_as_string(hide_password=False)
        settings = parse_config(
            f'state_dir = "{tmp_path}"\n[store]\nurl = "{url}"\n'
            f'[server]\npublic_url = "{PUBLIC_URL}"\n'
            f"{fakes.toml}\n[directories.entra.safety]\nmax_removals = 3\n"
            '[directories.push]\nkind = "scim"\n'
            '[targets.gateway]\nkind = "scim"\nurl = "http://127.0.0.1:9/scim/v2"\ntoken = "x"\n'
        )
        daemon = Daemon(settings, engine)
        try:
            with TestClient(build_app(daemon.state), follow_redirects=False) as client:
                yield Console(client, daemon, engine, fakes.fakes["entra"])
        finally:
            daemon.finish()
