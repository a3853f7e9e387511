"""The bundled demo tenant: the fake IdPs on 127.0.0.1 and a config that points at them.

Used by `syncd demo`. The fakes serve different generated tenants (one per vendor) and
accept the fake credentials written into the config; nothing here reaches a real IdP.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.testing.google_wire import ADMIN_EMAIL, service_account_info
from connectors.testing.harness import fake_class
from connectors.testing.server import ServerThread
from connectors.testing.tenant import generate


@dataclass(frozen=True)
class DemoSize:
    users: int = 600
    groups: int = 40
    members: int = 30


def start_fakes(stack: ExitStack, state_dir: Path, size: DemoSize) -> str:
    """Start the fakes (stopped when `stack` closes); return the demo config's TOML text."""
    state_dir.mkdir(parents=True, exist_ok=True)
    graph: Any = fake_class("graph")(
        generate(
            seed=11,
            users=size.users,
            groups=size.groups,
            members_per_group=size.members,
            domain="contoso.example",
        )
    )
    okta: Any = fake_class("okta")(
        generate(
            seed=12,
            users=size.users,
            groups=size.groups,
            members_per_group=size.members,
            nesting_depth=0,
            domain="okta-demo.example",
        )
    )
    google: Any = fake_class("google")(
        generate(
            seed=13,
            users=size.users,
            groups=size.groups,
            members_per_group=size.members,
            domain="gws-demo.example",
        )
    )
    keycloak: Any = fake_class("keycloak")(
        generate(
            seed=14,
            users=min(size.users, 48),  # a few dozen: the first `make demo` stays short
            groups=min(size.groups, 8),
            members_per_group=min(size.members, 10),
            nesting_depth=2,
            domain="kc-demo.example",
        )
    )
    # Auth0: a few dozen users, roles as teams (no nesting in Auth0)
    auth0: Any = fake_class("auth0")(
        generate(
            seed=14, users=48, groups=6, members_per_group=10, nesting_depth=0, domain="auth0-demo.example"
        ),
        domain="auth0-demo.us.auth0.com",
    )
    urls = {}
    fakes = (("graph", graph), ("okta", okta), ("google", google), ("keycloak", keycloak), ("auth0", auth0))
    for name, fake in fakes:
        srv = ServerThread(fake.app()).start()
        stack.callback(srv.stop)
        urls[name] = srv.url
    # OneLogin: a few dozen users whatever the size, so the first `make demo` stays short
    onelogin: Any = fake_class("onelogin")(
        generate(
            seed=14,
            users=min(size.users, 40),
            groups=min(size.groups, 8),
            members_per_group=min(size.members, 10),
            nesting_depth=0,
            domain="onelogin-demo.example",
        )
    )
    ol_srv = ServerThread(onelogin.app()).start()
    stack.callback(ol_srv.stop)
    urls["onelogin"] = ol_srv.url
    sa_file = state_dir / "google-demo.json"
    sa_file.write_text(json.dumps(service_account_info(urls["google"] + "/token", google.key)))
    sa_file.chmod(0o600)
    db = (state_dir / "syncd.db").resolve()
    return f"""# Written by `syncd demo`: fake IdP tenants served on 127.0.0.1 while the demo runs.
state_dir = "{state_dir.resolve()}"

[store]
url = "sqlite:///{db}"

[directories.entra-demo]
kind = "graph"
tenant_id = "{graph.tenant_id}"
client_id = "{graph.client_id}"
client_secret = "{graph.client_secret}"
base_url = "{urls["graph"]}/v1.0"
token_url = "{urls["graph"]}"
concurrency = 8

[directories.okta-demo]
kind = "okta"
org_url = "{urls["okta"]}"
token = "{okta.token}"
concurrency = 4

[directories.google-demo]
kind = "google"
service_account_file = "{sa_file.resolve()}"
subject = "{ADMIN_EMAIL.format(domain=google.tenant.domain)}"
base_url = "{urls["google"]}"
token_url = "{urls["google"]}/token"
concurrency = 8

[directories.keycloak-demo]
kind = "keycloak"
server_url = "{urls["keycloak"]}"
realm = "{keycloak.realm}"
client_id = "{keycloak.client_id}"
client_secret = "{keycloak.client_secret}"
concurrency = 4

[directories.auth0-demo]
kind = "auth0"
domain = "{auth0.domain}"
client_id = "{auth0.client_id}"
client_secret = "{auth0.client_secret}"
base_url = "{urls["auth0"]}"
concurrency = 4

[directories.onelogin-demo]
kind = "onelogin"
base_url = "{urls["onelogin"]}"
client_id = "{onelogin.client_id}"
client_secret = "{onelogin.client_secret}"
teams = "both"
concurrency = 4
"""
