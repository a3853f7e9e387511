"""The Typer app of the `syncd` command: the root group (global options, `--version`, the help
with the exit codes) over the command groups `cli.main.COMMANDS` names, each loaded on demand.
"""

from __future__ import annotations

import importlib
from typing import Any

import click
import typer
from typer.core import TyperGroup

from cli.context import ConfigOption, JsonOption, state
from cli.main import COMMANDS, EPILOG, HELP, SUMMARIES, version_line


class LazyGroup(TyperGroup):
    """The root group: knows its command names up front and imports a command's module only
    when the command is looked up, so start-up pays for one command group, not all of them."""

    _loaded: dict[str, TyperGroup] = {}
    #: True while the root's own help is written: commands are listed from `SUMMARIES`,
    #: so `syncd --help` imports no command module.
    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        LazyGroup._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            LazyGroup._listing = False

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if self._listing and cmd_name in SUMMARIES:
            return click.Command(cmd_name, help=SUMMARIES[cmd_name])
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


def build() -> typer.Typer:
    """The app (`cli.main.app`)."""
    from cli.output import plain_flags

    plain_flags()
    app = typer.Typer(
        name="syncd",
        cls=LazyGroup,
        help=HELP,
        epilog=EPILOG,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(root)
    return app


def _version(value: bool) -> None:
    if value:
        typer.echo(version_line())
        raise typer.Exit()


def root(
    ctx: typer.Context,
    config: ConfigOption = None,
    json: JsonOption = False,
    _version_flag: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    state(ctx, config=config, json=json)
