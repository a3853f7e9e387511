"""The `syncd` command: a small root that loads one module per command group on demand.

To add commands, write `cli/<name>.py` with `def register(app: typer.Typer) -> None` (add a
sub-app with `app.add_typer(...)` or a single command with `app.command(...)`), and map each
command name it registers to the module in `COMMANDS` below. Commands get the global options
through `cli.context.state(ctx)`.

Start-up cost: a command's module is imported only when that command runs (or for `--help`),
and command modules import the store, web server and IdP SDKs inside the command, so
`syncd --version` loads none of them (tests/cli/test_start.py).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from cli.context import ConfigOption, JsonOption, state
from cli.exitcodes import EXIT_FAILED

#: command name → the module that registers it, in the order `syncd --help` lists them.
COMMANDS: dict[str, str] = {
    "db": "cli.db",
    "users": "cli.users",
    "teams": "cli.teams",
    "audit": "cli.audit",
    "config": "cli.config",
    "token": "cli.tokens",
    "serve": "cli.serve",
    "run": "cli.sync",
    "plan": "cli.sync",
    "runs": "cli.runs",
    "login-sync": "cli.login",
    "demo": "cli.demo",
    "webhooks": "cli.webhooks",
    "push": "cli.push",
    "targets": "cli.targets",
}

HELP = """\
syncd keeps the users and teams of an LLM gateway in step with your identity providers
(Entra ID, Okta, Google Workspace, OneLogin, Keycloak, Auth0): IdPs push through its
SCIM 2.0 endpoint, and pull connectors read groups and members on a schedule. Everything
lands in one store (SQLite by default, PostgreSQL for several replicas) with an audit
trail, and is delivered to the gateway's SCIM endpoint, a change feed and webhooks.
"""

EPILOG = "\n\n".join(
    (
        "Exit codes:",
        "0  success",
        "1  unexpected failure: a bug (SYNCD_DEBUG=1 shows the traceback)",
        "2  bad usage, or a config or store that cannot be used (one line on stderr names the fix)",
        "3  safety stop: removals above a threshold, nothing written, plan kept (syncd runs show ID)",
        "4  IdP or target unreachable or refusing the credentials, or the directory locked by "
        "another run (retrying later may succeed)",
        "5  partial: the IdP read was incomplete; adds and updates applied, nothing removed",
    )
)


class LazyGroup(TyperGroup):
    """The root group: knows its command names up front and imports a command's module only
    when the command is looked up, so start-up pays for one command group, not all of them."""

    _loaded: dict[str, TyperGroup] = {}

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        module = COMMANDS.get(cmd_name)
        # a name missing from COMMANDS is looked up in every module (slow, but never wrong)
        for name in [module] if module else dict.fromkeys(COMMANDS.values()):
            command = self._group(name).commands.get(cmd_name)
            if command is not None:
                return command
        return None

    @classmethod
    def _group(cls, module: str) -> TyperGroup:
        if module not in cls._loaded:
            sub = typer.Typer()
            importlib.import_module(module).register(sub)
            cls._loaded[module] = typer.main.get_group(sub)
        return cls._loaded[module]


app = typer.Typer(
    name="syncd",
    cls=LazyGroup,
    help=HELP,
    epilog=EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

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


def _plain_flags() -> None:
    """Typer's rich help labels every flag `<bool>` as if it took a value; a flag takes none,
    so its type column is left empty (`--json`, not `--json <bool>`)."""
    from typer.core import TyperOption

    original = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag and self.metavar is None else original(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_plain_flags()


def main() -> None:
    """Console entry point: the last boundary, so no traceback reaches a user by accident.
    Listings are offered to `cli.quick` first (served without Typer's pydantic start-up)."""
    try:
        from cli.quick import run

        code = run(sys.argv[1:])
        if code is not None:
            sys.exit(code)
        app(prog_name="syncd")
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("SYNCD_DEBUG"):
            raise
        from cli.output import safe

        msg = safe(" ".join(str(exc).split()))
        typer.echo(
            f"syncd: internal error: {type(exc).__name__}: {msg}; SYNCD_DEBUG=1 shows the traceback", err=True
        )
        sys.exit(EXIT_FAILED)


if __name__ == "__main__":
    main()
