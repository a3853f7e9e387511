"""`syncd config check`: validate the config file, print every problem or a summary."""

from __future__ import annotations

from typing import Any

import typer

from cli.context import EXIT_USAGE, ConfigOption, JsonOption, state
from cli.output import Column, console, print_json, table
from syncd.config import (
    Auth0Directory,
    ConfigError,
    DirectorySettings,
    GoogleDirectory,
    GraphDirectory,
    KeycloakDirectory,
    OktaDirectory,
    PullDirectory,
    Settings,
    load_config,
)
from syncd.config.models import OneLoginDirectory

config = typer.Typer(name="config", help="Check the configuration.", no_args_is_help=True)

_KV = (Column("key", "key", style="bold"), Column("value", "value"))
_DIRS = (
    Column("name", "directory", style="bold"),
    Column("kind", "kind"),
    Column("schedule", "schedule"),
    Column("credentials", "credentials"),
)
_TARGETS = (
    Column("name", "target", style="bold"),
    Column("url", "url"),
    Column("sources", "sources"),
    Column("credentials", "credentials"),
)

_HOOKS = (
    Column("name", "webhook", style="bold"),
    Column("url", "url"),
    Column("events", "events"),
    Column("secret", "secret"),
)


def register(app: typer.Typer) -> None:
    app.add_typer(config)


def credentials(d: DirectorySettings) -> str:
    """Where a directory's credentials come from; never the secret itself."""
    if isinstance(d, GraphDirectory):
        return d.secret.source if d.secret else f"certificate {d.certificate_path}"
    if isinstance(d, OktaDirectory):
        return d.api_token.source if d.api_token else f"OAuth key {d.private_key_file}"
    if isinstance(d, GoogleDirectory):
        return f"service account {d.service_account_file}"
    if isinstance(d, Auth0Directory | KeycloakDirectory):
        return f"client {d.client_id}, secret from {d.secret.source if d.secret else '?'}"
    if isinstance(d, OneLoginDirectory):
        return f"client {d.client_id}, secret from {d.secret.source}" if d.secret else "none"
    return "SCIM token (`syncd token create`)"


def summary(s: Settings) -> dict[str, Any]:
    """The effective settings with secrets shown only by their source."""
    return {
        "file": str(s.source) if s.source else None,
        "state_dir": str(s.state_dir),
        "store": s.store.display_url,
        "store_source": s.store.source,
        "server": s.server.model_dump(),
        "log": s.log.model_dump(),
        "directories": [
            {
                "name": name,
                "kind": d.kind,
                "schedule": str(d.schedule) if isinstance(d, PullDirectory) else "push",
                "credentials": credentials(d),
            }
            for name, d in s.directories.items()
        ],
        "targets": [
            {
                "name": name,
                "url": t.url,
                "sources": ", ".join(t.sources) if t.sources is not None else "every directory",
                "credentials": t.secret.source,
            }
            for name, t in s.targets.items()
        ],
        "console": console_summary(s),
        "feed": s.feed.model_dump(),
        "webhooks": [
            {
                "name": name,
                "url": w.url.split("?", 1)[0],
                "events": ", ".join(w.events),
                "secret": w.signing_secret.source,
            }
            for name, w in s.webhooks.items()
        ],
        "notes": notes(s),
    }


def console_summary(s: Settings) -> dict[str, Any]:
    """The console's sign-in settings; secrets by their source only."""
    c = s.console
    return {
        "url": s.console_url,
        "sso": f"{c.oidc.issuer} (client {c.oidc.client_id}, secret from {c.oidc.secret.source})"
        if c.oidc
        else None,
        "break_glass": c.break_glass,
        "directory": c.directory,
        "session_key": c.secret.source if c.secret else f"generated in {s.state_dir}/console-session.key",
    }


def notes(s: Settings) -> list[str]:
    """What the settings imply that an operator may not expect (not problems)."""
    shared = [
        f"server.listen and server.admin_listen are both {s.server.listen}: the console, /v1 and "
        "/metrics are served next to /scim/v2; expose only /scim/v2 to the internet (see "
        "docs/deploying.md), or move admin_listen to a private address"
    ]
    workers = [
        f"server.workers = {s.server.workers} applies to `syncd serve`; `syncd run` serves SCIM in "
        "its own process. For more SCIM processes, run `syncd serve` beside the daemon on the "
        "same store (docs/deploying.md)"
    ]
    return ((shared if s.server.shared_listener else []) + (workers if s.server.workers > 1 else [])) + [
        f"directory {name!r}: Keycloak is read in full on every run. Admin events are not used "
        "for incremental reads, whether or not the realm records them (adminEventsEnabled): "
        "they miss self-registration, identity-provider logins and mappers, and LDAP/user "
        "federation imports"
        for name, d in s.directories.items()
        if isinstance(d, KeycloakDirectory)
    ]


def _sign_in(c: dict[str, Any]) -> str:
    ways = ([f"SSO {c['sso']}"] if c["sso"] else []) + (
        ["break-glass admin token"] if c["break_glass"] else []
    )
    return ", ".join(ways) or "none: set [console.oidc] or break_glass = true"


@config.command("check")
def check_cmd(ctx: typer.Context, config: ConfigOption = None, json: JsonOption = False) -> None:
    """Validate the config; print each problem with file:line (exit 2), or "ok" and a summary."""
    st = state(ctx, config=config, json=json)
    try:
        settings = load_config(st.config)
    except ConfigError as exc:
        if st.json:
            print_json({"ok": False, "problems": [vars(p) for p in exc.problems]})
        else:
            for p in exc.problems:
                typer.echo(str(p), err=True)
            typer.echo(f"{len(exc.problems)} problem(s)", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    data = summary(settings)
    if st.json:
        print_json({"ok": True, **data})
        return
    typer.echo(f"ok: {data['file'] or 'no config file found, using the built-in defaults'}")
    server, log = data["server"], data["log"]
    rows = [
        ("state_dir", data["state_dir"]),
        (
            "store.url",
            data["store"] + ("" if data["store_source"] == "value" else f"  ({data['store_source']})"),
        ),
        ("server.listen", f"{server['listen']}  (SCIM)"),
        ("server.admin_listen", f"{server['admin_listen']}  (console, /v1, /metrics)"),
        ("server.public_url", server["public_url"]),
        ("server.max_body_bytes", server["max_body_bytes"]),
        ("log", f"{log['level']}, {log['format']}"),
        ("console", data["console"]["url"]),
        ("console.sign-in", _sign_in(data["console"])),
        ("feed.retention", f"{data['feed']['retention']}s"),
    ]
    table([{"key": k, "value": str(v)} for k, v in rows], _KV, title="settings")
    if data["directories"]:
        table(data["directories"], _DIRS, title="directories")
    else:
        console().print("[dim]no directories configured[/dim]")
    if data["targets"]:
        table(data["targets"], _TARGETS, title="delivery targets")
    if data["webhooks"]:
        table(data["webhooks"], _HOOKS, title="webhooks")
    for note in data["notes"]:
        console().print(f"[dim]note: {note}[/dim]")
