"""`syncd config check`: validate the config file, print every problem or a summary."""

from __future__ import annotations

from typing import Any

import typer

from cli.context import EXIT_USAGE, ConfigOption, JsonOption, state
from cli.output import Column, console, print_json, table
from syncd.config import (
    ConfigError,
    DirectorySettings,
    GoogleDirectory,
    GraphDirectory,
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
    if isinstance(d, OneLoginDirectory):
        return f"client {d.client_id}, secret from {d.secret.source}" if d.secret else "none"
    return "SCIM token (`syncd token create`)"


def summary(s: Settings) -> dict[str, Any]:
    """The effective settings with secrets shown only by their source."""
    return {
        "file": str(s.source) if s.source else None,
        "state_dir": str(s.state_dir),
        "store": s.store.display_url,
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
    }


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
        ("store.url", data["store"]),
        ("server.listen", server["listen"]),
        ("server.public_url", server["public_url"]),
        ("server.max_body_bytes", server["max_body_bytes"]),
        ("log", f"{log['level']}, {log['format']}"),
    ]
    table([{"key": k, "value": str(v)} for k, v in rows], _KV, title="settings")
    if data["directories"]:
        table(data["directories"], _DIRS, title="directories")
    else:
        console().print("[dim]no directories configured[/dim]")
