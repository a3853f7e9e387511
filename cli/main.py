"""The `syncd` command: a small root that registers one module per command group.

To add commands, write `cli/<name>.py` with `def register(app: typer.Typer) -> None` (add a
sub-app with `app.add_typer(...)` or a single command with `app.command(...)`), and add the
module to `COMMANDS` below. Commands get the global options through `cli.context.state(ctx)`.
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import PackageNotFoundError, version

import typer

from cli import audit, db, demo, login, serve, sync, teams, tokens, users, webhooks
from cli import config as config_cmd
from cli import push as push_cmd
from cli import targets as targets_cmd
from cli.context import EXIT_FAILED, ConfigOption, JsonOption, state

COMMANDS = (
    db,
    users,
    teams,
    audit,
    config_cmd,
    tokens,
    serve,
    sync,
    login,
    demo,
    webhooks,
    push_cmd,
    targets_cmd,
)

HELP = """\
syncd keeps the users and teams of an LLM gateway in step with your identity providers
(Entra ID, Okta, Google Workspace): IdPs push through its SCIM 2.0 endpoint, and pull
connectors read groups and members on a schedule. Everything lands in one store
(SQLite by default, PostgreSQL for several replicas) with an audit trail.
"""

EPILOG = (
    "Exit codes: 0 success; 1 unexpected failure (a bug: SYNCD_DEBUG=1 shows the traceback); "
    "2 bad usage, or a config or store that cannot be used (one line on stderr names the "
    "problem and its fix)."
)

app = typer.Typer(
    name="syncd",
    help=HELP,
    epilog=EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        try:
            typer.echo(f"syncd {version('syncd')}")
        except PackageNotFoundError:
            typer.echo("syncd (not installed)")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: ConfigOption = None,
    json: JsonOption = False,
    _version_flag: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    state(ctx, config=config, json=json)


for _module in COMMANDS:
    _module.register(app)


def main() -> None:
    """Console entry point: the last boundary, so no traceback reaches a user by accident."""
    try:
        app(prog_name="syncd")
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("SYNCD_DEBUG"):
            raise
        msg = " ".join(str(exc).split())
        typer.echo(
            f"syncd: internal error: {type(exc).__name__}: {msg}; SYNCD_DEBUG=1 shows the traceback", err=True
        )
        sys.exit(EXIT_FAILED)


if __name__ == "__main__":
    main()
