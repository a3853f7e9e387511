"""Configuration problems and where they are in the TOML file.

tomllib keeps no positions, so `key_lines` scans the text: it follows `[table]` headers and
`key = value` lines (dotted and quoted keys too) and maps every full key path to the first line
that defines it. A problem whose key is absent from the file (a missing key) points at the
nearest enclosing table that is there. Good enough for a config file; not a TOML parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration; `line`/`column` are 1-based."""

    message: str
    key: str = ""
    file: str | None = None
    line: int | None = None
    column: int | None = None

    def location(self) -> str:
        parts = [self.file or "<config>"]
        parts += [str(n) for n in (self.line, self.column) if n is not None]
        return ":".join(parts)

    def __str__(self) -> str:
        key = f"{self.key}: " if self.key else ""
        return f"{self.location()}: {key}{self.message}"


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists every reason found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems)
        self.problems = problems

    def __str__(self) -> str:
        more = len(self.problems) - 1
        return str(self.problems[0]) + (f" (and {more} more)" if more > 0 else "")


class ConfigNotFound(ConfigError):
    """The file named by `--config` or `$SYNCD_CONFIG` does not exist."""


_TOML_TYPES = {str: "string", int: "integer", float: "float", bool: "boolean", dict: "table", list: "array"}
_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "bool_type": "a boolean",
    "dict_type": "a table",
    "model_type": "a table",
    "float_type": "a number",
    "model_attributes_type": "a table",
    "path_type": "a path string",
}


def toml_type(v: Any) -> str:
    return _TOML_TYPES.get(type(v), type(v).__name__)


def problem_from_error(
    err: Any, lines: dict[tuple[str, ...], int], file: str | None, *, kinds: tuple[str, ...]
) -> Problem:
    """One pydantic error as a Problem; `kinds` are the tags of the `directories` union."""
    loc = [str(p) for p in err["loc"] if p != "[key]"]
    if len(loc) > 2 and loc[0] == "directories" and loc[2] in kinds:
        del loc[2]  # the discriminated union's tag is not a key in the file
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        msg = "unknown key"
    elif kind == "missing":
        msg = "missing required key"
    elif kind == "union_tag_invalid":
        loc.append("kind")
        msg = f"kind must be one of {', '.join(kinds)}, got {err['input'].get('kind')!r}"
    elif kind == "union_tag_not_found":
        msg = f"missing required key kind (one of {', '.join(kinds)})"
    elif kind in _EXPECTED:
        msg = f"expected {_EXPECTED[kind]}, got {toml_type(err['input'])}"
    elif kind == "value_error":
        msg = msg.removeprefix("Value error, ")
    elif kind == "literal_error":
        msg = f"{msg[:1].lower()}{msg[1:]}, got {err['input']!r}"
    else:
        msg = msg[:1].lower() + msg[1:]
    key = tuple(loc)
    line = next((lines[key[:n]] for n in range(len(key), 0, -1) if key[:n] in lines), None)
    return Problem(msg, key=".".join(_quote(k) for k in key), file=file, line=line)


def _quote(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else '"' + key.replace('"', '\\"') + '"'


_KEY_PART = re.compile(r"""\s*(?:([A-Za-z0-9_-]+)|"((?:[^"\\]|\\.)*)"|'([^']*)')\s*""")


def _parse_key(s: str) -> tuple[str, ...] | None:
    """A TOML (dotted, possibly quoted) key as a tuple; None when `s` is not a key."""
    parts, pos = [], 0
    while True:
        m = _KEY_PART.match(s, pos)
        if not m:
            return None
        parts.append(m.group(1) or m.group(2) or m.group(3) or "")
        pos = m.end()
        if pos == len(s):
            return tuple(parts)
        if s[pos] != ".":
            return None
        pos += 1


def _scan_to(s: str, stop: str) -> int | None:
    """Index of the first `stop` character outside quotes in `s`, or None."""
    quote = None
    for i, ch in enumerate(s):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == stop:
            return i
    return None


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Full key path -> first line (1-based) that defines it, from tables and `key =` lines."""
    found: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    in_string: str | None = None
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if in_string:
            if line.count(in_string) % 2:
                in_string = None
            continue
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            body = line[2:] if line.startswith("[[") else line[1:]
            end = _scan_to(body, "]")
            keys = _parse_key(body[:end]) if end is not None else None
            if keys is not None:
                table = keys
                found.setdefault(table, no)
            continue
        eq = _scan_to(line, "=")
        keys = _parse_key(line[:eq]) if eq is not None else None
        if keys is None or eq is None:
            continue
        full = table + keys
        for n in range(len(table) + 1, len(full) + 1):
            found.setdefault(full[:n], no)
        for delim in ('"""', "'''"):
            if line[eq:].count(delim) % 2:
                in_string = delim
    return found
