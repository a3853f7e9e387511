"""Translate a parsed filter into one SQLAlchemy boolean expression over the store's models.

    select(User).where(user_condition(parse_filter('userName eq "bjensen"')))

Nothing is filtered in Python; every attribute a filter may name maps to SQL:

- columns: id, externalId (caseExact, compared as is), userName / Group displayName (the
  casefolded `*_key` column against the casefolded value: an indexable `key = :v`), User
  displayName, name.givenName, name.familyName (lower() on both sides), active (boolean);
- meta.created / meta.lastModified (created_at / updated_at; ISO 8601 values, taken as UTC when
  naive) and meta.version (`W/"3"`, `"3"` or 3; eq and ne only);
- every other single-valued string of the core and enterprise User schemas through the JSON
  `data` column (`data->>'title'`, `data#>>'{urn,manager,value}'` on PostgreSQL,
  JSON_EXTRACT on SQLite), lower() on both sides unless caseExact;
- emails / emails.value / .type / .primary / emails[...] as EXISTS over user_emails, and
  members / members.value / members[value ...] as EXISTS over memberships. A value path is one
  EXISTS (all its conditions hold for the same element); `emails.type eq "a" and emails.value
  co "b"` is two, as RFC 7644 §3.4.2.2 says.

Anything else (phoneNumbers, addresses, roles, groups, password, unknown names or schema URNs)
raises InvalidFilter naming the attribute: a filter is never widened to "everything".

Semantics shared with `evaluate.py`: `ne` is exactly `not eq`, so rows where the attribute is
absent (NULL, or no element for multi-valued attributes) match `ne`; every leaf is two-valued
(never SQL NULL), so `not (...)` is the complement. `eq null` means absent. co/sw/ew are LIKE
with `%`, `_` and `\\` escaped; for caseExact columns a case-sensitive check is added because
SQLite's LIKE ignores ASCII case. gt/ge/lt/le on strings use code-point order (COLLATE "C" on
PostgreSQL; SQLite's BINARY already is). lower() is the database's: full Unicode on
PostgreSQL, ASCII-only on SQLite — the `*_key` columns (casefolded in Python) have no such gap.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, String, and_, func, literal, not_, or_, select, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from syncd.service.errors import InvalidFilter
from syncd.service.filters.ast import And, AttrPath, Compare, Filter, Not, Or, Present, ValuePath
from syncd.service.filters.evaluate import ORDER_OPS, operand
from syncd.service.schema import (
    CORE_GROUP,
    CORE_USER,
    GROUP,
    USER,
    Attr,
    ResourceType,
    Schema,
)
from syncd.store.models import Membership, Team, User, UserEmail

LIKE_ESCAPE = "\\"
_VERSION_RE = re.compile(r'(?:W/)?"?([0-9]{1,18})"?')


class _codepoint(FunctionElement[str]):
    """Its argument, compared in code-point order (COLLATE "C" on PostgreSQL)."""

    type = String()
    name = "codepoint"
    inherit_cache = True


@compiles(_codepoint)
def _codepoint_default(element: _codepoint, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(next(iter(element.clauses)), **kw))


@compiles(_codepoint, "postgresql")
def _codepoint_pg(element: _codepoint, compiler: Any, **kw: Any) -> str:
    return f'({compiler.process(next(iter(element.clauses)), **kw)}) COLLATE "C"'


@dataclass(frozen=True)
class Scalar:
    """A single value in SQL. mode: "exact" (as is), "key" (casefolded column: casefold the
    value), "lower" (lower() both sides), "version" (meta.version)."""

    label: str
    attr: Attr
    expr: ColumnElement[Any]
    mode: str = "exact"
    nullable: bool = True


@dataclass(frozen=True)
class Multi:
    """A multi-valued attribute stored as child rows; `exists(cond)` correlates them."""

    label: str
    exists: Callable[[ColumnElement[bool]], ColumnElement[bool]]
    subs: dict[str, Scalar] = field(default_factory=dict)  # lower-case sub name → element value


@dataclass(frozen=True)
class Each:
    """One sub-attribute of a multi-valued attribute (`emails.value`): some element's value."""

    multi: Multi
    element: Scalar


@dataclass(frozen=True)
class Composite:
    """A single-valued complex attribute (name, manager): only `pr`, true if any part is."""

    label: str
    parts: tuple[Scalar, ...]


Target = Scalar | Multi | Each | Composite


def escape_like(value: str) -> str:
    """`value` with LIKE's wildcards and the escape character escaped (escape LIKE_ESCAPE)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _not_filterable(label: str) -> InvalidFilter:
    return InvalidFilter(f"attribute '{label}' is not filterable")


def _schema_attr(rt: ResourceType, path: AttrPath) -> tuple[Schema, Attr]:
    if path.urn is None:
        schemas = (rt.core, *rt.extensions)
    elif path.urn.lower() == rt.core.id.lower():
        schemas = (rt.core,)
    elif ext := rt.extension(path.urn):
        schemas = (ext,)
    else:
        raise InvalidFilter(f"unknown schema '{path.urn}' in '{path}' for {rt.name} filters")
    for schema in schemas:
        attr = schema.attr(path.attr)
        if attr is not None and attr.returned != "never":
            return schema, attr
    raise _not_filterable(str(path))


def _meta(path: AttrPath, model: Any) -> Scalar:
    sub = (path.sub or "").lower()
    label = f"meta.{path.sub}"
    if sub == "created":
        return Scalar(label, Attr("created", "dateTime"), model.created_at, nullable=False)
    if sub == "lastmodified":
        return Scalar(label, Attr("lastModified", "dateTime"), model.updated_at, nullable=False)
    if sub == "version":
        return Scalar(label, Attr("version"), model.version, mode="version", nullable=False)
    raise _not_filterable(str(path))


def _is_meta(path: AttrPath, core_urn: str) -> bool:
    return path.attr.lower() == "meta" and (path.urn is None or path.urn.lower() == core_urn.lower())


def _user_emails() -> Multi:
    emails = USER.core.attr("emails")
    assert emails is not None
    value, type_, primary = (emails.child(n) for n in ("value", "type", "primary"))
    assert value and type_ and primary

    def exists(cond: ColumnElement[bool]) -> ColumnElement[bool]:
        return select(UserEmail.id).where(UserEmail.user_id == User.id, cond).exists()

    return Multi(
        "emails",
        exists,
        {
            "value": Scalar("emails.value", value, UserEmail.value_key, "key", nullable=False),
            "type": Scalar("emails.type", type_, UserEmail.type, "lower"),
            "primary": Scalar("emails.primary", primary, UserEmail.primary, nullable=False),
        },
    )


def _team_members() -> Multi:
    members = GROUP.core.attr("members")
    assert members is not None
    value = members.child("value")
    assert value is not None

    def exists(cond: ColumnElement[bool]) -> ColumnElement[bool]:
        return select(Membership.user_id).where(Membership.team_id == Team.id, cond).exists()

    mode = "exact" if value.case_exact else "lower"
    return Multi(
        "members",
        exists,
        {"value": Scalar("members.value", value, Membership.user_id, mode, nullable=False)},
    )


_USER_COLUMNS: dict[str, tuple[Any, str, bool]] = {  # lower-case path → (column, mode, nullable)
    "id": (User.id, "exact", False),
    "externalid": (User.external_id, "exact", True),
    "username": (User.user_name_key, "key", False),
    "displayname": (User.display_name, "lower", True),
    "name.givenname": (User.given_name, "lower", True),
    "name.familyname": (User.family_name, "lower", True),
    "active": (User.active, "exact", False),
}
_TEAM_COLUMNS: dict[str, tuple[Any, str, bool]] = {
    "id": (Team.id, "exact", False),
    "externalid": (Team.external_id, "exact", True),
    "displayname": (Team.display_name_key, "key", False),
}


def _user_scalar(schema: Schema, attr: Attr, sub: Attr | None) -> Scalar:
    label = f"{attr.name}.{sub.name}" if sub else attr.name
    leaf = sub or attr
    if schema.id == CORE_USER and label.lower() in _USER_COLUMNS:
        col, mode, nullable = _USER_COLUMNS[label.lower()]
        return Scalar(label, leaf, col, mode, nullable)
    if leaf.type not in ("string", "reference"):
        raise _not_filterable(label)
    keys = (attr.name, sub.name) if sub else (attr.name,)
    if schema.id != CORE_USER:
        keys = (schema.id, *keys)
        label = f"{schema.id}:{label}"
    expr = User.data[keys if len(keys) > 1 else keys[0]].as_string()
    return Scalar(label, leaf, expr, "exact" if leaf.case_exact else "lower")


def resolve_user(path: AttrPath) -> Target:
    """What a User filter's attribute path means in SQL; InvalidFilter if not filterable."""
    if _is_meta(path, CORE_USER):
        return _meta(path, User)
    schema, attr = _schema_attr(USER, path)
    if attr.multi:
        if attr.name != "emails":
            raise _not_filterable(str(path))
        return _multi_path(_user_emails(), path)
    if attr.type == "complex":
        if path.sub is None:
            return Composite(attr.name, tuple(_user_scalar(schema, attr, s) for s in attr.sub))
        sub = attr.child(path.sub)
        if sub is None:
            raise _not_filterable(str(path))
        return _user_scalar(schema, attr, sub)
    if path.sub is not None:
        raise _not_filterable(str(path))
    return _user_scalar(schema, attr, None)


def resolve_team(path: AttrPath) -> Target:
    """What a Group filter's attribute path means in SQL; InvalidFilter if not filterable."""
    if _is_meta(path, CORE_GROUP):
        return _meta(path, Team)
    _schema, attr = _schema_attr(GROUP, path)
    if attr.multi:  # members
        return _multi_path(_team_members(), path)
    col = _TEAM_COLUMNS.get(attr.name.lower())
    if col is None or path.sub is not None:
        raise _not_filterable(str(path))
    return Scalar(attr.name, attr, *col)


def _multi_path(multi: Multi, path: AttrPath) -> Multi | Each:
    """`emails` is the collection; `emails.value` is the value of some element."""
    if path.sub is None:
        return multi
    element = multi.subs.get(path.sub.lower())
    if element is None:
        raise _not_filterable(str(path))
    return Each(multi, element)


def _pattern(op: str, value: str) -> str:
    esc = escape_like(value)
    return {"co": f"%{esc}%", "sw": f"{esc}%", "ew": f"%{esc}"}[op]


def _text_cond(t: Scalar, op: str, want: str) -> ColumnElement[bool]:
    col = t.expr
    if t.mode == "key":
        lhs: ColumnElement[Any] = col
        rhs: ColumnElement[Any] = literal(want.casefold(), String())
    elif t.mode == "lower":
        lhs, rhs = func.lower(col), func.lower(literal(want, String()))
    else:
        lhs, rhs = col, literal(want, String())
    if op == "eq":
        return lhs == rhs
    if op in ORDER_OPS:
        a, b = _codepoint(lhs), _codepoint(rhs)
        return {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[op]
    pat = _pattern(op, want.casefold() if t.mode == "key" else want)
    like = lhs.like(func.lower(pat) if t.mode == "lower" else pat, escape=LIKE_ESCAPE)
    if t.mode != "exact" or not want:
        return like
    # SQLite's LIKE ignores ASCII case: add a case-sensitive test for caseExact columns.
    n = len(want)
    exact = {
        "sw": func.substr(col, 1, n) == want,
        "ew": func.substr(col, func.length(col) - n + 1) == want,
        "co": func.replace(col, want, "") != col,
    }[op]
    return and_(like, exact)


def _version_cond(t: Scalar, op: str, value: Any) -> ColumnElement[bool]:
    m = _VERSION_RE.fullmatch(str(value)) if isinstance(value, str | int) else None
    if op not in ("eq", "ne") or isinstance(value, bool) or not m:
        raise InvalidFilter(f"'{t.label}' takes eq or ne with a version such as W/\"3\"")
    return t.expr == int(m.group(1))


def scalar_condition(t: Scalar, op: str, value: Any) -> ColumnElement[bool]:
    """`t op value` as a two-valued SQL condition (`pr` when op is "pr")."""
    is_text = t.attr.type in ("string", "reference")
    if op == "pr":
        cond = t.expr.is_not(None) if t.nullable else true()
        return and_(cond, t.expr != "") if is_text and t.mode != "version" else cond
    if op == "ne":
        return not_(scalar_condition(t, "eq", value))
    if t.mode == "version":
        return _version_cond(t, op, value)
    want = operand(t.attr, op, value, t.label)
    if want is None:  # eq null: absent
        return not_(scalar_condition(t, "pr", None))
    if is_text:
        cond = _text_cond(t, op, want)
    elif op == "eq":
        cond = t.expr == want
    else:  # dateTime order (operand() refused co/sw/ew and booleans)
        cond = {"gt": t.expr > want, "ge": t.expr >= want, "lt": t.expr < want, "le": t.expr <= want}[op]
    return and_(t.expr.is_not(None), cond) if t.nullable else cond


def _leaf(t: Target, op: str, value: Any) -> ColumnElement[bool]:
    if isinstance(t, Scalar):
        return scalar_condition(t, op, value)
    if isinstance(t, Composite):
        if op != "pr":
            raise InvalidFilter(f"'{t.label}' is complex: name a sub-attribute, or use pr")
        return or_(*(scalar_condition(p, "pr", None) for p in t.parts))
    if isinstance(t, Each):
        multi, element = t.multi, t.element
    elif op == "pr":
        return t.exists(true())
    else:  # `emails op v` compares the value sub-attribute
        multi, element = t, t.subs["value"]
    if op == "ne":
        return not_(multi.exists(scalar_condition(element, "eq", value)))
    return multi.exists(scalar_condition(element, op, value))


def _element_resolver(t: Target, path: AttrPath) -> Callable[[AttrPath], Target]:
    if not isinstance(t, Multi):
        raise InvalidFilter(f"'{path}' is not a multi-valued attribute: no [...] filter applies")

    def resolve(sub: AttrPath) -> Target:
        element = t.subs.get(sub.attr.lower()) if not (sub.urn or sub.sub) else None
        if element is None:
            raise _not_filterable(f"{t.label}.{sub}")
        return element

    return resolve


def translate(flt: Filter, resolve: Callable[[AttrPath], Target]) -> ColumnElement[bool]:
    """The SQL condition of `flt`, with attribute paths resolved by `resolve`."""
    if isinstance(flt, And):
        return and_(translate(flt.left, resolve), translate(flt.right, resolve))
    if isinstance(flt, Or):
        return or_(translate(flt.left, resolve), translate(flt.right, resolve))
    if isinstance(flt, Not):
        return not_(translate(flt.inner, resolve))
    if isinstance(flt, Present):
        return _leaf(resolve(flt.path), "pr", None)
    if isinstance(flt, Compare):
        return _leaf(resolve(flt.path), flt.op, flt.value)
    assert isinstance(flt, ValuePath)
    t = resolve(flt.path)
    inner = translate(flt.filter, _element_resolver(t, flt.path))
    assert isinstance(t, Multi)
    return t.exists(inner)


def user_condition(flt: Filter) -> ColumnElement[bool]:
    """One boolean SQL expression selecting the `User` rows that match `flt`."""
    return translate(flt, resolve_user)


def team_condition(flt: Filter) -> ColumnElement[bool]:
    """One boolean SQL expression selecting the `Team` rows that match `flt`."""
    return translate(flt, resolve_team)


__all__ = [
    "LIKE_ESCAPE",
    "Composite",
    "Each",
    "Multi",
    "Scalar",
    "escape_like",
    "resolve_team",
    "resolve_user",
    "scalar_condition",
    "team_condition",
    "translate",
    "user_condition",
]
