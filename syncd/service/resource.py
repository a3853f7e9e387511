"""Input normalisation: a SCIM body → the canonical attribute dict that the store keeps.

Invariants of a normalised dict (`data`):
- keys are canonical attribute names from `schema.py`; extension attributes live under their
  schema URN as a nested dict;
- readOnly attributes (`id`, `meta`, `groups`), writeOnly ones (`password`), `schemas`, and
  (for groups) `members` are never in it; unknown attributes are dropped (RFC 7644 §3.3 lets a
  service provider ignore attributes it does not know);
- values have their schema type: booleans sent as "True"/"false" become bools; an empty
  string, null, empty list or empty complex value means "absent" and is dropped;
- a multi-valued attribute sent as a single object (OneLogin's `emails`) becomes a list of one;
- at most one element of a multi-valued attribute has `primary: true`;
- every string is within the limits of `limits` (characters and length, per attribute), every
  multi-valued attribute has at most `limits.MAX_VALUES` values, and required names are not
  blank: both stores hold exactly the same set of valid resources.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from syncd.service import limits
from syncd.service.errors import InvalidValue, Mutability
from syncd.service.schema import Attr, ResourceType, Schema

SKIP_ALWAYS = {"schemas", "meta"}


def fold(value: str) -> str:
    """The comparison key of a case-insensitive string (userName, displayName, email)."""
    return value.casefold()


def coerce(attr: Attr, value: Any, where: str) -> Any:
    """`value` converted to `attr`'s type, or None when it means "absent"."""
    if value is None:
        return None
    if attr.multi:
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list):
            raise InvalidValue(f"{where} must be a list")
        limits.check_count(len(value), where=where)
        single = dataclasses.replace(attr, multi=False)
        items = [coerce(single, v, f"{where}[{i}]") for i, v in enumerate(value)]
        items = [v for v in items if v is not None]
        if sum(1 for v in items if isinstance(v, dict) and v.get("primary") is True) > 1:
            raise InvalidValue(f"{where}: more than one value has primary=true")
        return items or None
    if attr.type == "complex":
        if not isinstance(value, dict):
            raise InvalidValue(f"{where} must be an object")
        out: dict[str, Any] = {}
        for key, v in value.items():
            sub = attr.child(key)
            if sub is None:
                continue
            cv = coerce(sub, v, f"{where}.{sub.name}")
            if cv is not None:
                out[sub.name] = cv
        return out or None
    return coerce_simple(attr, value, where)


def coerce_simple(attr: Attr, value: Any, where: str) -> Any:
    if value is None:
        return None
    t = attr.type
    if t == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise InvalidValue(f"{where} must be a boolean, got {value!r}")
    if t in ("integer", "decimal"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            try:
                return int(value) if t == "integer" else float(value)
            except (TypeError, ValueError):
                raise InvalidValue(f"{where} must be a number, got {value!r}") from None
        return value
    # string, reference, dateTime, binary
    if isinstance(value, bool | dict | list):
        raise InvalidValue(f"{where} must be a string, got {type(value).__name__}")
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidValue(f"{where} must be a string")
    if value == "":
        return None
    return limits.check_text(
        value, where=where, max_length=attr.max_length, multiline=attr.multiline, folded=not attr.case_exact
    )


def split_urn(key: str, rt: ResourceType) -> tuple[Schema, str] | None:
    """For a URN-qualified key: (schema, attribute path within it); None if the URN is unknown.

    `urn:…:enterprise:2.0:User:manager.value` → (enterprise schema, "manager.value");
    `urn:…:enterprise:2.0:User` → (enterprise schema, "").
    """
    low = key.lower()
    for schema in (rt.core, *rt.extensions):
        sid = schema.id.lower()
        if low == sid:
            return schema, ""
        if low.startswith(sid + ":"):
            return schema, key[len(sid) + 1 :]
    return None


def normalize(rt: ResourceType, body: dict[str, Any], *, current_id: str | None = None) -> dict[str, Any]:
    """The canonical `data` dict for a POST/PUT body (see the module invariants).

    `current_id`: the id of the resource being replaced; a body carrying a different `id`
    is a mutability error (Okta's PUT carries the same one).
    """
    if not isinstance(body, dict):
        raise InvalidValue("the resource must be a JSON object")
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key in SKIP_ALWAYS:
            continue
        if key.lower().startswith("urn:"):
            hit = split_urn(key, rt)
            if hit is None:
                continue
            schema, rest = hit
            if schema is rt.core:
                _put_core(rt, out, rest, value, current_id)
            elif rest == "":
                ext = _normalize_schema(schema, value, schema.id)
                if ext:
                    out[schema.id] = ext
            else:
                attr = schema.attr(rest)
                if attr is not None:
                    cv = coerce(attr, value, rest)
                    if cv is not None:
                        out.setdefault(schema.id, {})[attr.name] = cv
            continue
        _put_core(rt, out, key, value, current_id)
    return out


def _put_core(rt: ResourceType, out: dict[str, Any], key: str, value: Any, current_id: str | None) -> None:
    attr = rt.core.attr(key)
    if attr is None or attr.name == "members":
        return
    if attr.name == "id":
        if current_id is not None and value not in (None, current_id):
            raise Mutability("id is readOnly and cannot be changed")
        return
    if attr.mutability in ("readOnly", "writeOnly"):
        return
    cv = coerce(attr, value, attr.name)
    if cv is not None:
        out[attr.name] = cv


def _normalize_schema(schema: Schema, value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidValue(f"{where} must be an object")
    out: dict[str, Any] = {}
    for key, v in value.items():
        attr = schema.attr(key)
        if attr is None or attr.mutability in ("readOnly", "writeOnly"):
            continue
        cv = coerce(attr, v, attr.name)
        if cv is not None:
            out[attr.name] = cv
    return out


def renormalize(rt: ResourceType, data: dict[str, Any]) -> dict[str, Any]:
    """Normalise a dict that is already in canonical shape (after a PATCH)."""
    return normalize(rt, data)


def require(rt: ResourceType, data: dict[str, Any]) -> None:
    """Raise InvalidValue if a required attribute is missing."""
    for attr in rt.core.attrs:
        if not attr.required or attr.mutability == "readOnly":
            continue
        value = data.get(attr.name)
        if value in (None, ""):
            raise InvalidValue(f"{attr.name} is required")
        if isinstance(value, str):
            limits.check_not_blank(value, where=attr.name)
