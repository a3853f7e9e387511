"""The store URL and directory names of the configuration, read with tomllib alone.

Listings (`syncd users list`, `teams list`) need two things from the config: where the store
is, and which directory names exist. Validating the whole file costs pydantic and SQLAlchemy,
most of a second on a small machine; this reads only those keys, following the same rules as
`syncd.config` (file search order, `state_dir` and its default, `[store] url|url_env|url_file`,
`$CREDENTIALS_DIRECTORY`).

Invariant: `store_config` returns a result only when `syncd.config.load_config` would take the
same keys to the same values; anything it does not understand (a syntax error, a wrong type, an
unknown `[store]` key, a missing secret) returns None, and the caller takes the full path, which
reports the problem in its own words. Keys outside `state_dir`, `[store]` and the directory
names are not checked here: `syncd config check` validates the whole file.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: as `syncd.config.SEARCH_PATH`, `syncd.config.types.DIRECTORY_NAME` and `_ENV_NAME`
SEARCH_PATH = (Path("config.toml"), Path("/etc/syncd/config.toml"))
_DIRECTORY_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class StoreConfig:
    """What a listing needs from the config: the store URL (a secret: never print it) and the
    configured directory names."""

    url: str
    directories: frozenset[str]


def store_config(path: Path | None, environ: Mapping[str, str] | None = None) -> StoreConfig | None:
    """The store URL and directory names of the config `syncd.config.load_config(path)` would
    read, or None when only the full loader can say (see the module docstring)."""
    env = os.environ if environ is None else environ
    try:
        return _read(path, env)
    except (OSError, UnicodeDecodeError, ValueError, TypeError):  # TOMLDecodeError is a ValueError
        return None


def _read(path: Path | None, env: Mapping[str, str]) -> StoreConfig | None:
    file = _find(path, env)
    if file is False:
        return None
    data: Any = tomllib.loads(file.read_text(encoding="utf-8")) if file else {}
    base = file.resolve().parent if file else Path.cwd()
    state = data.get("state_dir")
    if state is None:
        state_dir = _default_state_dir(env)
    elif isinstance(state, str) and state.strip():
        state_dir = _path(state, base)
    else:
        return None
    store = data.get("store", {})
    directories = data.get("directories", {})
    if not isinstance(store, dict) or not isinstance(directories, dict):
        return None
    if not set(store) <= {"url", "url_env", "url_file"} or len(store) > 1:
        return None
    if not all(isinstance(d, dict) and _DIRECTORY_NAME.fullmatch(n) for n, d in directories.items()):
        return None
    url = _url(store, env, base) if store else f"sqlite:///{state_dir / 'syncd.db'}"
    return StoreConfig(url, frozenset(directories)) if url else None


def _find(path: Path | None, env: Mapping[str, str]) -> Path | bool | None:
    """The file to read, None for the built-in defaults, False for a named file that is
    missing (the full loader says so)."""
    named = path or env.get("SYNCD_CONFIG") or None
    if named is not None:
        p = Path(named).expanduser()
        return p if p.is_file() else False
    return next((p for p in SEARCH_PATH if p.is_file()), None)


def _default_state_dir(env: Mapping[str, str]) -> Path:
    if env.get("STATE_DIRECTORY"):
        return Path(env["STATE_DIRECTORY"].split(":")[0]).expanduser()
    xdg = env.get("XDG_STATE_HOME")
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return (Path(xdg) if xdg else home / ".local" / "state") / "syncd"


def _path(raw: str, base: Path) -> Path:
    p = Path(raw).expanduser()
    return p if p.is_absolute() else base / p


def _url(store: dict[str, Any], env: Mapping[str, str], base: Path) -> str | None:
    ((key, value),) = store.items()
    if not isinstance(value, str) or not value.strip():
        return None
    if key == "url":
        return value
    if key == "url_env":
        found = env.get(value) if _ENV_NAME.fullmatch(value) else None
        return found.strip() or None if found is not None else None
    creds = env.get("CREDENTIALS_DIRECTORY")
    p = Path(value).expanduser()
    file = (
        Path(creds) / p
        if creds and not p.is_absolute() and (Path(creds) / p).exists()
        else _path(value, base)
    )
    return file.read_text(encoding="utf-8").strip() or None if file.is_file() else None
