"""The filter syntax tree (RFC 7644 §3.4.2.2) and the PATCH path (§3.5.2): immutable values.

Names are kept as written by the client (attribute names are matched case-insensitively later,
against `syncd.service.schema`); operators are lower-cased by the parser.

    Filter = Compare | Present | And | Or | Not | ValuePath

Inside a `ValuePath` the paths of the inner filter are relative to the multi-valued attribute:
`emails[type eq "work"]` is `ValuePath(AttrPath(None, "emails"), Compare(AttrPath(None, "type"), ...))`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

#: A comparison value: a JSON string, number, boolean, or null.
Value: TypeAlias = str | int | float | bool | None

COMPARE_OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})


@dataclass(frozen=True)
class AttrPath:
    """`[urn ":"] attr ["." sub]`; `urn` is None when the path is not schema-qualified."""

    urn: str | None
    attr: str
    sub: str | None = None

    def __str__(self) -> str:
        head = f"{self.urn}:{self.attr}" if self.urn else self.attr
        return f"{head}.{self.sub}" if self.sub else head


@dataclass(frozen=True)
class Compare:
    """`path op value`; `op` is one of COMPARE_OPS, lower-case."""

    path: AttrPath
    op: str
    value: Value


@dataclass(frozen=True)
class Present:
    """`path pr`."""

    path: AttrPath


@dataclass(frozen=True)
class And:
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Or:
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Not:
    inner: Filter


@dataclass(frozen=True)
class ValuePath:
    """`path[filter]`: some element of the multi-valued `path` satisfies `filter` as a whole."""

    path: AttrPath
    filter: Filter


Filter: TypeAlias = Compare | Present | And | Or | Not | ValuePath


@dataclass(frozen=True)
class PatchPath:
    """A PATCH operation path: `[urn:]attr[.sub]` or `[urn:]attr[filter][.sub]`.

    `filter` (a value filter, paths relative to `attr`) is None for a plain attribute path;
    `sub` is the sub-attribute after the dot, with or without a filter.
    """

    urn: str | None
    attr: str
    filter: Filter | None = None
    sub: str | None = None
