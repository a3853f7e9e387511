"""`syncd users list`, `syncd teams list` and `syncd --version` served before Typer is imported.

Typer converts every parameter through a pydantic TypeAdapter, and pydantic alone costs more
start-up than the whole listing; so `main()` first offers argv to `run` here. It recognises
only the plain spellings of those two commands and their options (`--opt VALUE`, `-o VALUE`,
flags), reads the store with `cli.fastread`, and prints through the same functions the Typer
commands use, so the output is the same byte for byte.

Invariant: `run` returns None, having printed nothing, for anything else: another command,
`--help`, `--opt=VALUE`, an unknown or malformed option, `--directory` with `--local`, or a
store `cli.fastread` cannot answer for. Typer then runs the command as usual and gives its own
messages and exit codes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: global options `syncd` takes before the command (also accepted after it)
_GLOBAL_VALUE = {"--config": "config", "-c": "config"}
_GLOBAL_FLAGS = {"--json": "json"}
#: each command's options: value options (name → key) and flags (name → key)
_VALUE = {"--directory": "directory", "-d": "directory", "--limit": "limit", "-n": "limit"}
_FLAGS = {
    ("users", "list"): {"--local": "local", "--inactive": "inactive", "--all": "every"},
    ("teams", "list"): {"--local": "local", "--members": "members", "--all": "every"},
}


def run(argv: list[str]) -> int | None:
    """Serve `argv` (without the program name) and return the exit code, or None (see the
    module docstring)."""
    if argv == ["--version"]:
        from cli.main import version_line

        print(version_line())
        return 0
    opts = _parse(argv)
    if opts is None:
        return None
    command = opts.pop("command")
    limit = None if opts["every"] else opts["limit"]
    if command == ("users", "list"):
        from cli import fastread

        users = fastread.list_users(
            opts["config"],
            directory=opts["directory"],
            local=opts["local"],
            include_inactive=opts["inactive"],
            limit=limit,
        )
        if users is None:
            return None
        from cli.listings import show_users

        show_users(*users, inactive=opts["inactive"], as_json=opts["json"])
        return 0
    from cli import fastread

    teams = fastread.list_teams(
        opts["config"],
        directory=opts["directory"],
        local=opts["local"],
        with_members=opts["members"],
        limit=limit,
    )
    if teams is None:
        return None
    from cli.listings import show_teams

    show_teams(*teams, members=opts["members"], as_json=opts["json"])
    return 0


def _parse(argv: list[str]) -> dict[str, Any] | None:
    opts: dict[str, Any] = {
        "config": None,
        "json": False,
        "directory": None,
        "limit": 100,
        "local": False,
        "inactive": False,
        "members": False,
        "every": False,
    }
    words: list[str] = []
    args = iter(argv)
    for arg in args:
        if not arg.startswith("-"):
            words.append(arg)
            if len(words) > 2:
                return None
            continue
        if len(words) == 1:  # between the group and its command: only Typer knows
            return None
        flags = _FLAGS.get((words[0], words[1]), {}) if words else {}
        values = {**_GLOBAL_VALUE, **(_VALUE if words else {})}
        if arg in values:
            value = next(args, None)
            if not value or value.startswith("-"):
                return None
            opts[values[arg]] = value
        elif arg in _GLOBAL_FLAGS:
            opts["json"] = True
        elif arg in flags:
            opts[flags[arg]] = True
        else:
            return None
    command = tuple(words)
    if command not in _FLAGS or (opts["local"] and opts["directory"] is not None):
        return None
    limit = opts["limit"]
    if isinstance(limit, str):
        if not (limit.isascii() and limit.isdigit()) or int(limit) < 1:
            return None
        opts["limit"] = int(limit)
    if opts["config"] is not None:
        opts["config"] = Path(opts["config"])
    opts["command"] = command
    return opts
