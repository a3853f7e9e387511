"""SCIM PATCH (RFC 7644 §3.5.2) applied to a normalised attribute dict; pure, no I/O.

Accepts what real clients send: op names in any case (`Add`, `replace`), booleans as strings,
path-less `add`/`replace` whose value object has plain, dotted (`name.givenName`) and
URN-qualified keys, value-filtered paths (`emails[type eq "work"].value`, created when
nothing matches, as Entra expects), URN-qualified paths, and the read-only `id` echoed back
unchanged (Okta).

Group members are never loaded: operations on `members` are returned as `MemberOp`s, in
order, for the service to apply in O(changed members). Supported member forms: add a list,
remove a list, `remove` of `members[value eq "x"]` (or several `value eq` joined by `or`),
remove all, and replace the whole list. A member of type Group is refused (membership is flat).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

from syncd.service.errors import (
    InvalidFilter,
    InvalidPath,
    InvalidSyntax,
    InvalidValue,
    Mutability,
    NoTarget,
)
from syncd.service.filters.ast import And, Compare, Filter, Or
from syncd.service.filters.evaluate import matches as filter_matches
from syncd.service.filters.parser import parse_path
from syncd.service.limits import NAME_MAX, check_text
from syncd.service.resource import coerce, coerce_simple, renormalize, require, split_urn
from syncd.service.schema import Attr, ResourceType, Schema

OPS = ("add", "remove", "replace")


@dataclass(frozen=True, slots=True)
class MemberOp:
    """A change of a group's member set. `displays`: (user id, display) for the members given
    with a `display` (RFC 7643 §2.4 and §4.2: immutable, so a client may set it when it adds
    the member, and it is kept until the member is removed or the member list replaced)."""

    kind: Literal["add", "remove", "replace", "clear"]
    ids: tuple[str, ...] = ()
    displays: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class PatchOutcome:
    data: dict[str, Any]
    member_ops: list[MemberOp] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Target:
    schema: Schema
    ext: str | None  # extension URN whose nested dict holds the attribute, None for core
    attr: Attr | None  # None: the whole extension object
    filter: Any = None
    sub: Attr | None = None


def apply_patch(
    rt: ResourceType, data: dict[str, Any], operations: Any, *, current_id: str | None = None
) -> PatchOutcome:
    """Apply `operations` (the PatchOp `Operations` list) to a copy of `data`."""
    if not isinstance(operations, list) or not operations:
        raise InvalidSyntax("Operations must be a non-empty list")
    out = PatchOutcome(copy.deepcopy(data))
    for i, op in enumerate(operations):
        if not isinstance(op, dict):
            raise InvalidSyntax(f"Operations[{i}] must be an object")
        low = {str(k).lower(): v for k, v in op.items()}
        name = str(low.get("op", "")).lower()
        if name not in OPS:
            raise InvalidSyntax(f"Operations[{i}].op must be add, remove or replace, got {low.get('op')!r}")
        path, value = low.get("path"), low.get("value")
        if path in (None, ""):
            if name == "remove":
                raise NoTarget(f"Operations[{i}]: remove needs a path")
            if not isinstance(value, dict):
                raise InvalidValue(f"Operations[{i}]: {name} without a path needs an object value")
            for key, v in value.items():
                if str(key).lower() == "schemas":
                    continue
                if key.lower() == "id":
                    if current_id is not None and v not in (None, current_id):
                        raise Mutability("id is readOnly and cannot be changed")
                    continue
                if key.lower() == "meta":
                    continue
                _apply(rt, out, name, resolve(rt, key), v, current_id)
        else:
            if not isinstance(path, str):
                raise InvalidPath(f"Operations[{i}].path must be a string")
            if name != "remove" and "value" not in low:
                raise InvalidValue(f"Operations[{i}]: {name} needs a value")
            _apply(rt, out, name, resolve(rt, path), value, current_id)
    out.data = renormalize(rt, out.data)
    require(rt, out.data)
    return out


def resolve(rt: ResourceType, path: str) -> Target:
    """The attribute a PATCH path (or a path-less value key) points at."""
    schema, rest = rt.core, path
    if path.lower().startswith("urn:"):
        hit = split_urn(path, rt)
        if hit is None:
            raise InvalidPath(f"unknown schema in path {path!r}")
        schema, rest = hit
        if rest == "":
            if schema is rt.core:
                raise InvalidPath(f"path {path!r} names no attribute")
            return Target(schema, schema.id, None)
    parsed = parse_path(rest)
    attr = schema.attr(parsed.attr)
    if attr is None:
        raise InvalidPath(f"no attribute {parsed.attr!r} in {schema.name}")
    sub = None
    if parsed.sub:
        sub = attr.child(parsed.sub)
        if sub is None:
            raise InvalidPath(f"no sub-attribute {parsed.sub!r} of {attr.name}")
    if parsed.filter is not None and not attr.multi:
        raise InvalidPath(f"{attr.name} is not multi-valued; a value filter cannot apply")
    ext = None if schema is rt.core else schema.id
    return Target(schema, ext, attr, parsed.filter, sub)


def _apply(
    rt: ResourceType, out: PatchOutcome, op: str, t: Target, value: Any, current_id: str | None
) -> None:
    if t.attr is None:  # a whole extension object
        _apply_extension(rt, out, op, t, value, current_id)
        return
    if t.attr.name == "members" and t.ext is None and rt.name == "Group":
        out.member_ops.append(_member_op(op, t, value))
        return
    if t.attr.name == "password":
        return  # writeOnly: accepted, never stored
    if t.attr.mutability == "readOnly" or (t.sub is not None and t.sub.mutability == "readOnly"):
        raise Mutability(f"{t.attr.name} is readOnly")
    container = out.data if t.ext is None else out.data.setdefault(t.ext, {})
    if t.attr.multi:
        _apply_multi(container, op, t, value)
    elif t.sub is not None:
        cur = container.get(t.attr.name)
        if op == "remove":
            if isinstance(cur, dict):
                cur.pop(t.sub.name, None)
        else:
            if not isinstance(cur, dict):
                cur = container[t.attr.name] = {}
            cur[t.sub.name] = coerce_simple(t.sub, value, f"{t.attr.name}.{t.sub.name}")
    elif op == "remove":
        container.pop(t.attr.name, None)
    elif t.attr.type == "complex":
        incoming = coerce(t.attr, value, t.attr.name) or {}
        cur = container.get(t.attr.name)
        container[t.attr.name] = {**cur, **incoming} if isinstance(cur, dict) else incoming
    else:
        container[t.attr.name] = coerce_simple(t.attr, value, t.attr.name)
    if t.ext is not None and not container:
        out.data.pop(t.ext, None)


def _apply_extension(
    rt: ResourceType, out: PatchOutcome, op: str, t: Target, value: Any, current_id: str | None
) -> None:
    """An operation whose path (or path-less value key) is an extension's URN.

    RFC 7644 §3.5.2.1 and §3.5.2.3: the value of `add`/`replace` is a set of the extension's
    attributes, each applied as if named by its own path (so `replace` replaces only the
    attributes given). A `schemas` key in it (conformance suites and some clients send the
    extension as a whole resource fragment, `{"schemas": [urn], "department": "x"}`) names
    schemas, not attributes (RFC 7643 §3: `schemas` is a resource-level attribute): it is
    ignored, as it is in a POST/PUT body. `remove` unassigns the whole extension (§3.5.2.2).
    """
    if op == "remove":
        out.data.pop(t.ext, None)
        return
    if not isinstance(value, dict):
        raise InvalidValue(f"{t.ext} must be an object")
    for key, v in value.items():
        if str(key).lower() == "schemas":
            continue
        _apply(rt, out, op, resolve(rt, f"{t.ext}:{key}"), v, current_id)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict) and "value" in a and "value" in b:
        va, vb = a["value"], b["value"]
        if isinstance(va, str) and isinstance(vb, str):
            return va.casefold() == vb.casefold()
        return va == vb
    return a == b


def _apply_multi(container: dict[str, Any], op: str, t: Target, value: Any) -> None:
    attr = t.attr
    assert attr is not None
    items: list[Any] = list(container.get(attr.name) or [])
    if t.filter is None:
        if t.sub is not None:
            raise InvalidPath(
                f'{attr.name}.{t.sub.name}: use a value filter, e.g. {attr.name}[type eq "work"]'
            )
        if op == "remove":
            if value is None:
                container.pop(attr.name, None)
                return
            drop = coerce(attr, value, attr.name) or []
            items = [i for i in items if not any(_same(i, d) for d in drop)]
        else:
            new = coerce(attr, value, attr.name) or []
            if op == "replace":
                items = new
            else:
                for n in new:
                    if isinstance(n, dict) and n.get("primary") is True:
                        for i in items:
                            if isinstance(i, dict):
                                i["primary"] = False
                    hit = next((i for i in items if _same(i, n)), None)
                    if hit is None:
                        items.append(n)
                    elif isinstance(hit, dict) and isinstance(n, dict):
                        hit.update(n)
    else:
        hits = [i for i in items if isinstance(i, dict) and filter_matches(t.filter, i, attr)]
        if op == "remove":
            if t.sub is None:
                items = [i for i in items if not any(i is h for h in hits)]
            else:
                for h in hits:
                    h.pop(t.sub.name, None)
        else:
            if not hits:
                seed = _seed_from_filter(t.filter, attr)
                if seed is None:
                    raise NoTarget(f"no value of {attr.name} matches the path filter")
                items.append(seed)
                hits = [seed]
            made_primary = False  # by this operation, after coercion ("TRUE", "true", true)
            for h in hits:
                if t.sub is not None:
                    h[t.sub.name] = coerce_simple(t.sub, value, f"{attr.name}.{t.sub.name}")
                    made_primary = t.sub.name == "primary" and h[t.sub.name] is True
                else:
                    single = Attr(attr.name, "complex", sub=attr.sub)
                    incoming = coerce(single, value, attr.name) or {}
                    h.update(incoming)
                    made_primary = incoming.get("primary") is True
            if made_primary:
                for i in items:
                    if isinstance(i, dict) and not any(i is h for h in hits):
                        i["primary"] = False
    if items:
        container[attr.name] = items
    else:
        container.pop(attr.name, None)


def _seed_from_filter(flt: Any, attr: Attr) -> dict[str, Any] | None:
    """For `emails[type eq "work"]` with no match: a new element {"type": "work"}."""
    eq = equalities(flt)
    if eq is None:
        return None
    seed: dict[str, Any] = {}
    for name, v in eq.items():
        sub = attr.child(name)
        if sub is None:
            return None
        seed[sub.name] = v
    return seed


def _member_op(op: str, t: Target, value: Any) -> MemberOp:
    if t.sub is not None:
        raise InvalidPath("members sub-attributes cannot be patched; add or remove members instead")
    if t.filter is not None:
        if op != "remove":
            raise InvalidPath("a members value filter is supported only with remove")
        ids = member_ids_from_filter(t.filter)
        if ids is None:
            raise InvalidFilter('member filters support only value eq "<id>" joined by or')
        return MemberOp("remove", tuple(ids))
    if op == "remove" and value is None:
        return MemberOp("clear")
    ids, displays = member_refs(value)
    kind: Literal["add", "remove", "replace"] = op  # type: ignore[assignment]
    return MemberOp(kind, ids, displays if kind != "remove" else ())


def member_refs(value: Any) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The user ids of a `members` value, in order without repeats, and (id, display) for
    those given with a non-empty `display` (validated as any string the service stores)."""
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise InvalidValue("members must be a list of objects with a value")
    ids: list[str] = []
    displays: dict[str, str] = {}
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            raise InvalidValue(f"members[{i}] must be an object with a value")
        low = {str(k).lower(): v for k, v in m.items()}
        mid = low.get("value")
        if not isinstance(mid, str) or not mid:
            raise InvalidValue(f"members[{i}].value must be a non-empty string")
        if str(low.get("type") or "User").lower() == "group":
            raise InvalidValue(
                f"members[{i}] is a Group: nested groups are not supported, teams are flat; "
                "add the group's users instead"
            )
        ids.append(mid)
        shown = low.get("display")
        if shown not in (None, ""):
            if not isinstance(shown, str):
                raise InvalidValue(f"members[{i}].display must be a string")
            displays.setdefault(mid, check_text(shown, where=f"members[{i}].display", max_length=NAME_MAX))
    return tuple(dict.fromkeys(ids)), tuple(displays.items())


def equalities(flt: Filter) -> dict[str, Any] | None:
    """{sub-attribute: value} when `flt` is only `eq` comparisons joined by `and`, else None."""
    if isinstance(flt, Compare) and flt.op == "eq" and flt.path.sub is None and flt.path.urn is None:
        return {flt.path.attr: flt.value}
    if isinstance(flt, And):
        left, right = equalities(flt.left), equalities(flt.right)
        return None if left is None or right is None else {**left, **right}
    return None


def member_ids_from_filter(flt: Filter) -> list[str] | None:
    """The ids named by `value eq "x" [or value eq "y" ...]`, else None."""
    if (
        isinstance(flt, Compare)
        and flt.op == "eq"
        and flt.path.attr.lower() == "value"
        and flt.path.sub is None
        and isinstance(flt.value, str)
    ):
        return [flt.value]
    if isinstance(flt, Or):
        left, right = member_ids_from_filter(flt.left), member_ids_from_filter(flt.right)
        return None if left is None or right is None else left + right
    return None
