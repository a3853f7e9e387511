"""The system under test: a real `syncd run` subprocess with a SQLite store, a fake Okta tenant
(pull directory "okta"), a push directory "push" seeded over SCIM, both holding hostile names,
and a fake OpenID Connect provider the console signs admins in with.

`start_stack` writes the config, makes the tokens, starts the daemon, has it pull "okta" once
(the schedule never fires during a test), then seeds the push directory. The console is served on
`[server] admin_listen` (`console_url`); `[server] listen` (`scim_url`) faces the IdPs.

OIDC users: "alice" (admin group; her email is an Okta user, so her on-login sync runs),
"mallory" (admin group, a hostile display name) and "bob" (not an admin).
"""

from __future__ import annotations

import secrets
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select

from connectors.testing.harness import fake_class
from connectors.testing.server import ServerThread, free_port
from connectors.testing.tenant import Tenant, generate
from syncd.service import tokens
from syncd.store import session_scope
from syncd.store.engine import make_engine, upgrade
from syncd.store.models import Membership, ScimToken, Team, User
from tests.daemon.helpers import Daemon, runs, wait_for

#: Names an IdP or a SCIM client may send. Each must reach every page as text: nothing may run
#: (`window.__pwned` stays undefined) and nothing may widen the page.
SCRIPT = "<script>window.__pwned=1</script>"
IMG = '"><img src=x onerror="window.__pwned=1">'
RTL = "\u202eevil.exe\u202c team"
#: a long name the service stores (a pulled group name keeps room below NAME_MAX for the
#: " (<external id>)" a duplicate gets), one unbreakable word
LONG = "W" * 400
#: longer than any name the service accepts: SCIM refuses it with a 400, a pull holds the group
#: with a note in its run
TOO_LONG = "L" * 5000
HOSTILE = (SCRIPT, IMG, RTL, LONG)

ADMIN_GROUP = "syncd-admins"
ALICE_EMAIL = "alice@okta.example"
#: Upper bound for the daemon to start or finish a run while other suites load the machine
#: (the first run loads the Okta SDK); not a timing assertion.
PATIENCE_S = 180.0
#: the okta directory's schedule: only the stack and the tests start its runs (an hourly slot
#: could land between a test's Sync now and its approval)
NEVER_DURING_A_TEST = "0 0 29 2 *"
#: removals above this stop a run of "okta" for review (accidental-deletion prevention)
MAX_REMOVALS = 3
SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SCIM_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


@dataclass
class Stack:
    """A running daemon and what the tests need to drive it."""

    daemon: Daemon
    engine: Engine
    okta: Any  # the fake Okta (its `.tenant` is mutable: the next pull reads the change)
    oidc: Any  # the fake OpenID Connect provider (`connectors.testing.oidc.FakeOidc`)
    admin_token: str
    scim_token: str
    scim_url: str
    console_url: str
    tmp: Path

    def scim(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """A SCIM request to the push directory with its bearer token."""
        headers = {"Authorization": f"Bearer {self.scim_token}", "Content-Type": "application/scim+json"}
        return httpx.request(method, f"{self.scim_url}/scim/v2{path}", headers=headers, timeout=30, **kw)

    def admin_api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """An admin API request (`/v1/...`) with the admin token."""
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        return httpx.request(method, f"{self.console_url}{path}", headers=headers, timeout=30, **kw)

    def wait_run(self, directory: str, *, after: int = 0, outcome: str | None = None) -> Any:
        """The first finished run of `directory` with id > `after` (and `outcome`, if given)."""

        def found() -> Any:
            for r in runs(self.engine, directory):
                if r.id > after and r.ended_at is not None and (outcome is None or r.outcome == outcome):
                    return r
            return None

        return wait_for(
            found,
            what=f"a run of {directory} (after #{after}, outcome {outcome})",
            proc=self.daemon,
            timeout=PATIENCE_S,
        )

    def last_run_id(self, directory: str) -> int:
        return max((r.id for r in runs(self.engine, directory)), default=0)

    def team_id(self, directory: str, name: str) -> str:
        with session_scope(self.engine, write=False) as s:
            q = select(Team.id).where(Team.directory == directory, Team.display_name == name)
            return str(s.execute(q).scalar_one())

    def user_id(self, directory: str, user_name: str) -> str:
        with session_scope(self.engine, write=False) as s:
            q = select(User.id).where(User.directory == directory, User.user_name == user_name)
            return str(s.execute(q).scalar_one())

    def token_ids(self, name: str) -> list[str]:
        """Ids of the tokens called `name`."""
        with session_scope(self.engine, write=False) as s:
            return [str(i) for i in s.execute(select(ScimToken.id).where(ScimToken.name == name)).scalars()]

    def member_names(self, team_id: str) -> set[str]:
        with session_scope(self.engine, write=False) as s:
            q = select(User.user_name).join(Membership, Membership.user_id == User.id)
            return set(s.execute(q.where(Membership.team_id == team_id)).scalars())


def okta_tenant() -> Tenant:
    """A small tenant whose groups include hostile names (a name too long for the store too)."""
    t = generate(seed=31, users=24, groups=4, members_per_group=6, nesting_depth=0, domain="okta.example")
    for name in (*HOSTILE, TOO_LONG):
        g = t.add_group(name, description=name[:1000])
        for uid in list(t.users)[:3]:
            t.add_member(g.id, uid)
    hostile_user = t.add_user("hostile@okta.example", given_name=SCRIPT, family_name=IMG)
    t.add_member(next(iter(t.groups)), hostile_user.id)
    t.add_user(ALICE_EMAIL, given_name="Alice", family_name="Admin")
    return t


def start_oidc(stack: ExitStack, tmp: Path) -> tuple[Any, str]:
    """The fake provider with its users, served (stopped when `stack` closes); its config TOML
    (admin_listen's redirect URI is registered by `start_stack`)."""
    from connectors.testing.oidc import FakeOidc, serve_oidc

    oidc = FakeOidc()
    oidc.add_user("alice", email=ALICE_EMAIL, name="Alice Admin", groups=(ADMIN_GROUP, "staff"))
    oidc.add_user("mallory", email="mallory@okta.example", name=IMG + SCRIPT, groups=(ADMIN_GROUP,))
    oidc.add_user("bob", email="bob@elsewhere.example", name="Bob Viewer", groups=("staff",))
    srv = serve_oidc(oidc)
    stack.callback(srv.stop)
    (tmp / "oidc-secret").write_text(oidc.client_secret)
    (tmp / "session-key").write_text(secrets.token_urlsafe(48))
    toml = (
        f'\n[console]\ndirectory = "okta"\nsecret_file = "{tmp / "session-key"}"\n\n'
        f'[console.oidc]\nissuer = "{oidc.issuer}"\nclient_id = "{oidc.client_id}"\n'
        f'client_secret_file = "{tmp / "oidc-secret"}"\nadmin_groups = ["{ADMIN_GROUP}"]\n'
    )
    return oidc, toml


def write_config(
    tmp: Path,
    *,
    store_url: str,
    listen: str,
    admin_listen: str,
    okta: Any,
    okta_url: str,
    extra: str = "",
) -> Path:
    server = f'listen = "{listen}"\nadmin_listen = "{admin_listen}"\n'
    path = tmp / "config.toml"
    path.write_text(
        f'state_dir = "{tmp / "state"}"\n\n[store]\nurl = "{store_url}"\n\n[server]\n{server}\n'
        '[log]\nlevel = "info"\n\n'
        '[directories.push]\nkind = "scim"\n\n'
        f'[directories.okta]\nkind = "okta"\norg_url = "{okta_url}"\ntoken = "{okta.token}"\n'
        f'schedule = "{NEVER_DURING_A_TEST}"\njitter = "0s"\nlogin_time_budget = "5s"\n\n'
        f"[directories.okta.safety]\nmax_removals = {MAX_REMOVALS}\nmax_removal_percent = 100\n"
        f"{extra}"
    )
    return path


def start_stack(stack: ExitStack, tmp: Path, *, extra_config: str = "") -> Stack:
    """Start the fake IdP and the daemon (both stopped when `stack` closes) and seed them."""
    (tmp / "state").mkdir(parents=True, exist_ok=True)
    okta: Any = fake_class("okta")(okta_tenant())
    okta_srv = ServerThread(okta.app()).start()
    stack.callback(okta_srv.stop)

    store_url = f"sqlite:///{tmp / 'state' / 'syncd.db'}"
    engine = make_engine(store_url)
    stack.callback(engine.dispose)
    upgrade(engine)
    with session_scope(engine) as s:
        _, admin_token = tokens.create_token(s, directory=None, kind="admin", name="browser-tests")
        _, scim_token = tokens.create_token(s, directory="push", kind="scim", name="browser-tests push")

    listen = f"127.0.0.1:{free_port()}"
    admin_listen = f"127.0.0.1:{free_port()}"
    oidc, console_toml = start_oidc(stack, tmp)
    oidc.redirect_uris.add(f"http://{admin_listen}/signin/callback")
    cfg = write_config(
        tmp,
        store_url=store_url,
        listen=listen,
        admin_listen=admin_listen,
        okta=okta,
        okta_url=okta_srv.url,
        extra=console_toml + extra_config,
    )
    daemon = Daemon(cfg, tmp / "daemon.log")
    stack.callback(daemon.stop)
    wait_for(
        lambda: _ready(f"http://{admin_listen}"),
        what="the admin listener's /readyz",
        proc=daemon,
        timeout=PATIENCE_S,
    )
    st = Stack(
        daemon=daemon,
        engine=engine,
        okta=okta,
        oidc=oidc,
        admin_token=admin_token,
        scim_token=scim_token,
        scim_url=f"http://{listen}",
        console_url=f"http://{admin_listen}",
        tmp=tmp,
    )
    first = st.admin_api("POST", "/v1/directories/okta/sync")
    assert first.status_code in (200, 202, 409), first.text  # 409: a start-up run got there first
    st.wait_run("okta", outcome="applied")
    seed_push(st)
    return st


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def seed_push(st: Stack) -> None:
    """Hostile users and groups in the push directory, as an IdP's SCIM client sends them."""
    user_ids = []
    for i, name in enumerate(HOSTILE):
        r = st.scim(
            "POST",
            "/Users",
            json={
                "schemas": [SCIM_USER],
                "userName": f"hostile{i}@push.example",
                "displayName": name,
                "name": {"givenName": name[:512], "familyName": "Pushed"},
                "emails": [{"value": f"hostile{i}@push.example", "primary": True}],
            },
        )
        assert r.status_code == 201, r.text
        user_ids.append(r.json()["id"])
    for name in HOSTILE:
        r = st.scim(
            "POST",
            "/Groups",
            json={"schemas": [SCIM_GROUP], "displayName": name, "members": [{"value": u} for u in user_ids]},
        )
        assert r.status_code == 201, r.text
    refused = st.scim("POST", "/Groups", json={"schemas": [SCIM_GROUP], "displayName": TOO_LONG})
    assert refused.status_code == 400, refused.text
