"""Evaluate a value filter (the part inside `[...]`) against one element of a multi-valued
complex attribute, and the operand rules shared with the SQL translation.

Semantics (the same as `sql.py`, so a PATCH path and a query agree):
- sub-attribute names are matched case-insensitively against the schema; an unknown one
  raises InvalidFilter;
- strings compare case-insensitively (str.casefold) unless the sub-attribute is caseExact;
- booleans accept the strings "true"/"false" in any case on both sides (Entra sends "True");
- `ne` is exactly `not eq`: an absent (missing or null) value is `ne` anything;
- `eq null` is true when the value is absent, `ne null` when it is present;
- co/sw/ew apply to strings only; gt/ge/lt/le to strings (code-point order), numbers and
  dateTimes; booleans take only eq/ne/pr. A wrong operand type raises InvalidFilter.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from syncd.service.errors import InvalidFilter
from syncd.service.filters.ast import And, Compare, Filter, Not, Or, Present, Value
from syncd.service.schema import Attr

STRING_TYPES = frozenset({"string", "reference", "binary"})
NUMBER_TYPES = frozenset({"integer", "decimal"})
ORDER_OPS = frozenset({"gt", "ge", "lt", "le"})
TEXT_OPS = frozenset({"co", "sw", "ew"})


def parse_datetime(value: str, label: str) -> datetime:
    """An ISO 8601 dateTime as an aware UTC datetime (naive input is taken as UTC)."""
    try:
        dt = datetime.fromisoformat(value)
    except (ValueError, TypeError):
        raise InvalidFilter(f"{label}: {value!r} is not an ISO 8601 dateTime") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)


def as_bool(value: Any) -> bool | None:
    """True/False for a boolean or a "true"/"false" string (any case); None otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def operand(attr: Attr, op: str, value: Value, label: str) -> Any:
    """Check `label op value` against the attribute's type; the value to compare with.

    Returns a bool for booleans, an aware UTC datetime for dateTimes, the value otherwise
    (None only for `eq null` / `ne null`). Raises InvalidFilter naming `label`.
    """
    if attr.type == "complex":
        raise InvalidFilter(f"'{label}' is complex: name a sub-attribute, or use pr")
    if value is None:
        if op in ("eq", "ne"):
            return None
        raise InvalidFilter(f"'{label} {op} null': null takes only eq and ne")
    if attr.type == "boolean":
        b = as_bool(value)
        if op not in ("eq", "ne"):
            raise InvalidFilter(f"'{label}' is boolean: only eq, ne and pr apply, not {op}")
        if b is None:
            raise InvalidFilter(f"'{label}' is boolean: {value!r} is not true or false")
        return b
    if attr.type in STRING_TYPES:
        if not isinstance(value, str):
            raise InvalidFilter(f"'{label}' is a string: compare it with a string, not {value!r}")
        return value
    if op in TEXT_OPS:
        raise InvalidFilter(f"'{label}' is {attr.type}: {op} applies to strings only")
    if attr.type == "dateTime":
        if not isinstance(value, str):
            raise InvalidFilter(f"'{label}' is a dateTime: compare it with an ISO 8601 string")
        return parse_datetime(value, label)
    if attr.type in NUMBER_TYPES:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidFilter(f"'{label}' is a number: compare it with a number, not {value!r}")
        return value
    raise InvalidFilter(f"attribute '{label}' is not filterable")


def _get(item: dict[str, Any], name: str) -> Any:
    low = name.lower()
    return next((v for k, v in item.items() if k.lower() == low), None)


def _absent(raw: Any) -> bool:
    return raw is None or raw == "" or raw == [] or raw == {}


def _compare(sub: Attr, op: str, want: Any, raw: Any) -> bool:
    if op == "ne":
        return not _compare(sub, "eq", want, raw)
    if want is None:
        return _absent(raw)
    if sub.type == "boolean":
        return as_bool(raw) is want
    if sub.type in STRING_TYPES:
        if not isinstance(raw, str):
            return False
        have, want = (raw, want) if sub.case_exact else (raw.casefold(), want.casefold())
    elif sub.type == "dateTime":
        try:
            have = raw if isinstance(raw, datetime) else parse_datetime(raw, sub.name)
        except InvalidFilter:
            return False
        have = have if have.tzinfo else have.replace(tzinfo=UTC)
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        have = raw
    else:
        return False
    if op == "eq":
        return bool(have == want)
    if op == "co":
        return want in have
    if op == "sw":
        return have.startswith(want)
    if op == "ew":
        return have.endswith(want)
    return {"gt": have > want, "ge": have >= want, "lt": have < want, "le": have <= want}[op]


def _sub_attr(flt: Compare | Present, attr: Attr) -> Attr:
    path = flt.path
    sub = attr.child(path.attr) if not (path.urn or path.sub) else None
    if sub is None:
        raise InvalidFilter(f"attribute '{attr.name}.{path}' is not filterable")
    return sub


def validate(flt: Filter, attr: Attr) -> None:
    """Raise InvalidFilter unless `flt` is a well-typed value filter over `attr`'s elements."""
    if isinstance(flt, And | Or):
        validate(flt.left, attr)
        validate(flt.right, attr)
    elif isinstance(flt, Not):
        validate(flt.inner, attr)
    elif isinstance(flt, Present):
        _sub_attr(flt, attr)
    elif isinstance(flt, Compare):
        sub = _sub_attr(flt, attr)
        operand(sub, flt.op, flt.value, f"{attr.name}.{sub.name}")
    else:
        raise InvalidFilter(f"a value filter cannot contain another one: '{flt.path}[...]'")


def matches(flt: Filter, item: Any, attr: Attr) -> bool:
    """Does one element `item` of the multi-valued complex `attr` satisfy the value filter?

    `item` is a dict of sub-attributes (keys in any case); a bare scalar is read as
    {"value": item}. Raises InvalidFilter for unknown sub-attributes or ill-typed operands,
    whatever the item holds (the whole filter is checked first).
    """
    validate(flt, attr)
    return _matches(flt, item if isinstance(item, dict) else {"value": item}, attr)


def _matches(flt: Filter, item: dict[str, Any], attr: Attr) -> bool:
    if isinstance(flt, And):
        return _matches(flt.left, item, attr) and _matches(flt.right, item, attr)
    if isinstance(flt, Or):
        return _matches(flt.left, item, attr) or _matches(flt.right, item, attr)
    if isinstance(flt, Not):
        return not _matches(flt.inner, item, attr)
    assert isinstance(flt, Compare | Present)  # validate() refused ValuePath
    sub = _sub_attr(flt, attr)
    raw = _get(item, sub.name)
    if isinstance(flt, Present):
        return not _absent(raw)
    want = operand(sub, flt.op, flt.value, f"{attr.name}.{sub.name}")
    return _compare(sub, flt.op, want, raw)


__all__ = ["as_bool", "matches", "operand", "parse_datetime", "validate"]
