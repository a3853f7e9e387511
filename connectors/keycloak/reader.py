"""Keycloak JSON objects → snapshot values, and the group tree's transitive expansion.

Pure functions; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import orjson

from connectors.base import BadDataError
from syncd.reconcile.snapshot import SnapshotGroup, SnapshotUser

TeamName = Literal["name", "path"]


def parse_list(body: bytes, what: str) -> list[dict[str, Any]]:
    """The JSON array of one page; anything else is `BadDataError`. Items are checked where
    they are used (an item without an id raises KeyError or TypeError there)."""
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadDataError(f"{what}: the answer is not valid JSON") from exc
    if not isinstance(items, list):
        raise BadDataError(f"{what}: expected a JSON array")
    return items


def parse_objects(body: bytes, what: str) -> list[dict[str, Any]]:
    """`parse_list`, every item checked to be an object with an id (for small answers)."""
    items = parse_list(body, what)
    if not all(isinstance(i, dict) and "id" in i for i in items):
        raise BadDataError(f"{what}: expected a JSON array of objects with an id")
    return items


def parse_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadDataError(f"{what}: the answer is not valid JSON") from exc
    if not isinstance(obj, dict) or "id" not in obj:
        raise BadDataError(f"{what}: expected a JSON object with an id")
    return obj


def to_user(obj: Mapping[str, Any]) -> SnapshotUser:
    """A SnapshotUser from a UserRepresentation. `enabled: false` is inactive (a missing
    `enabled` counts as enabled: Keycloak always sends it). userName is `username`, which
    Keycloak stores lower-cased; the email is kept as given."""
    given, family = obj.get("firstName") or None, obj.get("lastName") or None
    display = " ".join(x for x in (given, family) if x) or None
    return SnapshotUser(
        external_id=obj["id"],
        user_name=obj.get("username") or obj["id"],
        active=obj.get("enabled") is not False,
        email=obj.get("email") or None,
        display_name=display,
        given_name=given,
        family_name=family,
    )


def team_name(obj: Mapping[str, Any], how: TeamName) -> str:
    """A team's display name: the group `name`, or its `path` (`/parent/child`, unique in the
    realm: sibling names are unique, names across branches are not)."""
    if how == "path" and obj.get("path"):
        return str(obj["path"])
    return str(obj.get("name") or obj["id"])


def description(obj: Mapping[str, Any]) -> str | None:
    """Keycloak 25+ has a `description` field; older realms often keep one as an attribute."""
    if obj.get("description"):
        return str(obj["description"])
    values = (obj.get("attributes") or {}).get("description") or ()
    return str(values[0]) if values else None


def transitive_members(
    children: Mapping[str, Iterable[str]], direct: Mapping[str, set[str]]
) -> dict[str, frozenset[str]]:
    """Each group's members through its whole subtree: a user in a subgroup is a member of every
    ancestor (Keycloak groups form a forest). Iterative post-order; a group reached twice (a
    server that broke the tree) is expanded once, so cycles end."""
    out: dict[str, frozenset[str]] = {}
    for root in direct:
        if root in out:
            continue
        stack: list[tuple[str, bool]] = [(root, False)]
        entered: set[str] = set()
        while stack:
            gid, expanded = stack.pop()
            if expanded:
                acc = set(direct.get(gid, ()))
                for c in children.get(gid, ()):
                    acc |= out.get(c, frozenset())
                out[gid] = frozenset(acc)
                continue
            if gid in out or gid in entered:
                continue
            entered.add(gid)
            stack.append((gid, True))
            stack.extend((c, False) for c in children.get(gid, ()) if c not in out)
    return out


def to_group(obj: Mapping[str, Any], members: frozenset[str], how: TeamName) -> SnapshotGroup:
    return SnapshotGroup(
        external_id=obj["id"],
        display_name=team_name(obj, how),
        member_ids=members,
        description=description(obj),
    )
