"""One address for both listeners stays possible: every path on one app, with a note."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import Engine

from cli.config import notes
from connectors.testing.server import ServerThread
from syncd.daemon.app import build_shared_app
from syncd.daemon.main import Daemon
from tests.daemon.conftest import settings_for
from tests.daemon.helpers import make_tokens


def test_a_shared_listener_serves_scim_console_and_admin_api(engine: Engine, tmp_path: Path) -> None:
    s = settings_for(
        engine,
        tmp_path,
        '[server]\nlisten = "127.0.0.1:9"\nadmin_listen = "127.0.0.1:9"\n[directories.push]\nkind = "scim"\n',
    )
    assert s.server.shared_listener
    assert any("expose only /scim/v2" in n for n in notes(s))
    admin, scim = make_tokens(engine)
    daemon = Daemon(s, engine)
    try:
        app = build_shared_app(daemon.state, public_url="http://127.0.0.1:9", max_body_bytes=1 << 20)
        srv = ServerThread(app, lifespan="on").start()
        try:
            with httpx.Client(base_url=srv.url, timeout=30) as c:
                users = c.get("/scim/v2/Users", headers={"Authorization": f"Bearer {scim}"})
                assert users.status_code == 200 and users.json()["totalResults"] == 0
                assert c.get("/v1/runs", headers={"Authorization": f"Bearer {admin}"}).status_code == 200
                assert c.get("/v1/runs", headers={"Authorization": f"Bearer {scim}"}).status_code == 401
                assert c.get("/metrics").status_code == 200
                signin = c.get("/signin", headers={"Accept": "text/html"})
                assert signin.status_code == 200 and "Sign in with token" in signin.text
        finally:
            srv.stop()
    finally:
        daemon.finish()


def test_separate_listeners_are_not_noted(engine: Engine, tmp_path: Path) -> None:
    s = settings_for(engine, tmp_path, "")
    assert not s.server.shared_listener and not [n for n in notes(s) if "admin_listen" in n]
