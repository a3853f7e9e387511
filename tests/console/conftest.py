"""The console on real uvicorn: both listeners of an in-process daemon, a fake Graph
directory "entra" and a fake OpenID Connect provider, on 127.0.0.1.

Fixtures: `console_env` (a running `ConsoleEnv`) and `console_toml` (extra TOML appended to
the config, e.g. `[console] break_glass = false`, overridable per test with
`@pytest.mark.parametrize("console_toml", [...], indirect=True)`). `sso_sign_in(client, env,
username)` signs an httpx client in through the provider's login form.

OIDC users: "alice" (admin: group "syncd-admins", email = a user of directory "entra", so
her on-login sync finds her) and "bob" (no admin group).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from connectors.testing.oidc import FakeOidc, serve_oidc
from connectors.testing.server import ServerThread, free_port
from syncd.config import Settings
from syncd.daemon.app import build_apps
from syncd.daemon.main import Daemon
from tests.daemon.conftest import settings_for
from tests.daemon.helpers import make_tokens, start_fakes

ADMIN_GROUP = "syncd-admins"
SESSION_KEY = "k" * 48


@dataclass
class ConsoleEnv:
    admin_url: str  # the admin listener: console, /v1, /metrics
    scim_url: str  # the SCIM listener: /scim/v2, /healthz
    oidc: FakeOidc
    engine: Engine
    settings: Settings
    daemon: Daemon
    admin_token: str
    scim_token: str
    alice_email: str
    tmp: Path

    def client(self) -> httpx.Client:
        """A browser-like client of the admin listener (HTML first, cookies kept)."""
        return httpx.Client(base_url=self.admin_url, headers={"Accept": "text/html"}, timeout=30)


@pytest.fixture
def console_toml(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", ""))


@pytest.fixture
def console_env(engine: Engine, tmp_path: Path, console_toml: str) -> Iterator[ConsoleEnv]:
    extra = console_toml
    with ExitStack() as stack:
        fakes = start_fakes(stack, tmp_path, {"entra": "graph"}, schedule="1h")
        tenant = fakes.fakes["entra"].tenant
        alice_email = sorted(u.user_name for u in tenant.users.values())[0]
        oidc = FakeOidc()
        oidc.add_user("alice", email=alice_email, name="Alice Admin", groups=(ADMIN_GROUP, "staff"))
        oidc.add_user("bob", email="bob@elsewhere.example", name="Bob Viewer", groups=("staff",))
        provider = serve_oidc(oidc)
        stack.callback(provider.stop)
        scim_port, admin_port = free_port(), free_port()
        (tmp_path / "oidc-secret").write_text(oidc.client_secret)
        (tmp_path / "session-key").write_text(SESSION_KEY)
        console = _console_toml(extra, oidc, tmp_path)
        toml = (
            f'[server]\nlisten = "127.0.0.1:{scim_port}"\nadmin_listen = "127.0.0.1:{admin_port}"\n'
            f'\n[directories.push]\nkind = "scim"\n{fakes.toml}\n{console}'
        )
        settings = settings_for(engine, tmp_path, toml)
        oidc.redirect_uris.add(f"{settings.console_url}/signin/callback")
        admin, scim = make_tokens(engine)
        daemon = Daemon(settings, engine)
        stack.callback(daemon.finish)
        apps = build_apps(daemon.state, public_url=settings.server.public_url, max_body_bytes=1 << 20)
        admin_srv = ServerThread(apps.admin, port=admin_port, lifespan="on").start()
        stack.callback(admin_srv.stop)
        scim_srv = ServerThread(apps.scim, port=scim_port).start()
        stack.callback(scim_srv.stop)
        yield ConsoleEnv(
            admin_srv.url, scim_srv.url, oidc, engine, settings, daemon, admin, scim, alice_email, tmp_path
        )


def _console_toml(extra: str, oidc: FakeOidc, tmp: Path) -> str:
    """`[console]` for the fake provider; `extra` lines starting in `[console]` go into it."""
    return (
        f'[console]\ndirectory = "entra"\nsecret_file = "{tmp / "session-key"}"\n{extra}\n'
        f'[console.oidc]\nissuer = "{oidc.issuer}"\nclient_id = "{oidc.client_id}"\n'
        f'client_secret_file = "{tmp / "oidc-secret"}"\nadmin_groups = ["{ADMIN_GROUP}"]\n'
    )


def sso_sign_in(
    client: httpx.Client, env: ConsoleEnv, username: str, *, next_path: str = "/"
) -> httpx.Response:
    """Sign in through the provider's form; the console's last answer (redirects not followed)."""
    r = client.get("/signin/oidc", params={"next": next_path})
    assert r.status_code == 303, r.text
    authorize = r.headers["location"]
    assert authorize.startswith(env.oidc.issuer + "/authorize?")
    with httpx.Client(timeout=30) as idp:
        form_page = idp.get(authorize)
        assert form_page.status_code == 200, form_page.text
        params = dict(httpx.URL(authorize).params)
        back = idp.post(env.oidc.issuer + "/authorize", data={**params, "username": username})
    assert back.status_code == 303, back.text
    return client.get(back.headers["location"])


def form_csrf(html: str) -> str:
    """The CSRF token in a page's forms."""
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def sign_in_token(client: httpx.Client, token: str) -> httpx.Response:
    page = client.get("/signin")
    return client.post("/signin/token", data={"csrf": form_csrf(page.text), "token": token, "next": "/"})


def session_csrf(client: httpx.Client) -> str:
    """The CSRF token inside the client's session cookie (for pages without a form)."""
    from syncd.console.auth.session import COOKIE, SessionCodec

    data = SessionCodec(SESSION_KEY).loads(client.cookies[COOKIE], max_age=86400)
    assert data is not None
    return str(data["csrf"])


def forged_session(env: ConsoleEnv, **data: Any) -> str:
    """A session cookie signed with the console's key (to age a session without waiting)."""
    from syncd.console.auth.session import SessionCodec

    return SessionCodec(SESSION_KEY).dumps(data)
