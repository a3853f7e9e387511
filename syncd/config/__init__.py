"""syncd's configuration: one TOML file validated into frozen, typed settings.

The file is the first that applies of: `--config PATH`, `$SYNCD_CONFIG`, `./config.toml`,
`/etc/syncd/config.toml`. When none exists the built-in defaults apply, so `syncd` runs on a
fresh machine (SQLite store under the state directory).

Paths written in the file (`state_dir`, `*_file`, key and certificate files) are relative to
the file's directory; a relative `*_file` is first looked up in `$CREDENTIALS_DIRECTORY`
(systemd `LoadCredential=`). A secret is given as the value itself, as `*_env` (the name of an
environment variable) or as `*_file`; it is read at load time into a `Secret`, whose repr and
str never show the value.

Every problem (TOML syntax, unknown key, wrong type, bad value, unreadable secret) becomes a
`Problem` naming the dotted key path and its line in the file; all of them are raised together
as one `ConfigError`. tomllib keeps no positions, so lines are found by scanning the text for
the key within its table (`key_lines`).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from syncd.config.models import (
    KINDS,
    Auth0Directory,
    DirectorySettings,
    GoogleDirectory,
    GraphDirectory,
    KeycloakDirectory,
    LogSettings,
    OktaDirectory,
    PullDirectory,
    ScimDirectory,
    ServerSettings,
    Settings,
    StoreSettings,
    default_state_dir,
)
from syncd.config.problems import ConfigError, ConfigNotFound, Problem, key_lines, problem_from_error
from syncd.config.types import DIRECTORY_NAME, Schedule, Secret, parse_duration

__all__ = [
    "DIRECTORY_NAME",
    "KINDS",
    "SEARCH_PATH",
    "Auth0Directory",
    "ConfigError",
    "ConfigNotFound",
    "DirectorySettings",
    "GoogleDirectory",
    "GraphDirectory",
    "KeycloakDirectory",
    "LogSettings",
    "OktaDirectory",
    "Problem",
    "PullDirectory",
    "Schedule",
    "ScimDirectory",
    "Secret",
    "ServerSettings",
    "Settings",
    "StoreSettings",
    "default_state_dir",
    "find_config_file",
    "load_config",
    "parse_config",
    "parse_duration",
]

SEARCH_PATH = (Path("config.toml"), Path("/etc/syncd/config.toml"))


def find_config_file(
    path: str | Path | None = None, *, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The file to read, or None for the built-in defaults; a named file must exist."""
    env = os.environ if environ is None else environ
    named = path or env.get("SYNCD_CONFIG") or None
    if named is not None:
        p = Path(named).expanduser()
        if not p.is_file():
            how = "--config" if path else "SYNCD_CONFIG"
            raise ConfigNotFound([Problem(f"config file not found (named by {how})", file=str(p))])
        return p
    return next((p for p in SEARCH_PATH if p.is_file()), None)


def load_config(path: str | Path | None = None, *, environ: Mapping[str, str] | None = None) -> Settings:
    """Find, read and validate the configuration (see the module docstring for the order)."""
    file = find_config_file(path, environ=environ)
    if file is None:
        return parse_config("", source=None, environ=environ)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError([Problem(f"cannot read the config file: {reason}", file=str(file))]) from None
    return parse_config(text, source=file, environ=environ)


def parse_config(
    text: str, *, source: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Validate TOML `text`; relative paths are taken from `source`'s directory (else the cwd)."""
    file = str(source) if source else None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\s*\(at (?:line (\d+), column (\d+)|(end of document))\)$", msg)
        line, col = (int(m.group(1)), int(m.group(2))) if m and m.group(1) else (None, None)
        if m and m.group(3):
            line = text.count("\n") + 1
        msg = msg[: m.start()] if m else msg
        raise ConfigError([Problem(f"TOML syntax: {msg}", file=file, line=line, column=col)]) from None
    base = source.resolve().parent if source else Path.cwd()
    ctx = {"environ": os.environ if environ is None else environ, "base_dir": base}
    try:
        settings = Settings.model_validate(data, context=ctx)
    except ValidationError as exc:
        lines = key_lines(text)
        problems = [problem_from_error(e, lines, file, kinds=KINDS) for e in exc.errors(include_url=False)]
        raise ConfigError(sorted(problems, key=lambda p: p.line or 0)) from None
    settings._source = source
    return settings
