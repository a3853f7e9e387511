"""Store rows → SCIM JSON, and the `attributes` / `excludedAttributes` projection.

A rendered resource has `schemas` (the core URN, plus each extension URN the resource has
data for), `id`, `externalId` when set, the stored attributes, the computed `groups` (users)
or `members` (groups) when asked for, and `meta` {resourceType, created, lastModified,
location, version}. `location` is absolute: `<public_url>/scim/v2/<endpoint>/<id>`.
Timestamps are ISO 8601 in UTC with a `Z` and microseconds (so a value read back into a
`meta.lastModified gt "…"` filter does not match the resource it came from).

Projection (RFC 7644 §3.4.2.5, RFC 7643 §2.4 `returned`):
- `attributes=a,b.c,urn:…:ext:x`: only the named attributes (a sub-attribute path keeps only
  that sub-attribute, in every element of a multi-valued attribute), plus the `returned:
  always` ones: `id` and `schemas`. `meta` is returned only when named (`meta`,
  `meta.version`, …), as in RFC 7644 §3.9's `attributes=userName` example.
- `excludedAttributes=…`: everything by default except the named ones; `id` and `schemas`
  cannot be excluded.
- both given: `attributes` first, then the exclusions.
- `returned: never` (password) is never in any response; it is not even stored.
- names are case-insensitive and may be URN-qualified; unknown names are ignored.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from syncd.service.common import etag
from syncd.service.resource import split_urn
from syncd.service.schema import GROUP, USER, ResourceType
from syncd.store.models import Team, User

LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ALWAYS = ("schemas", "id")
_META_SUBS = {s.lower(): s for s in ("resourceType", "created", "lastModified", "location", "version")}

Tree = dict[str, Any]  # key → True (the whole value) or a sub-tree


def timestamp(ts: datetime) -> str:
    """ISO 8601 UTC with a Z; naive values (SQLite) are UTC."""
    ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    return ts.isoformat().replace("+00:00", "Z")


def _meta(rt: ResourceType, row: User | Team, base: str) -> dict[str, Any]:
    return {
        "resourceType": rt.name,
        "created": timestamp(row.created_at),
        "lastModified": timestamp(row.updated_at),
        "location": f"{base}{rt.endpoint}/{row.id}",
        "version": etag(row.version),
    }


def _schemas(rt: ResourceType, resource: dict[str, Any]) -> list[str]:
    return [rt.core.id, *(s.id for s in rt.extensions if resource.get(s.id))]


def render_user(row: User, *, base: str, groups: Sequence[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The full User resource; `groups` (team id, display name) are rendered when given.

    `active` is rendered only when assigned. RFC 7643 §4.1.1 makes it readWrite and not
    required, so a PATCH `remove` of it (or a PUT without it) unassigns it (RFC 7644 §3.5.2.2:
    "the attribute SHALL be considered unassigned"), and an unassigned attribute is not returned
    (RFC 7643 §2.5). What it means is the service provider's to define (§4.1.1): an unassigned
    `active` counts as active (the `active` column, `active eq true` and the gateway).
    """
    data = copy.deepcopy(row.data)
    data.pop("password", None)
    out: dict[str, Any] = {"schemas": [], "id": row.id}
    if row.external_id is not None:
        out["externalId"] = row.external_id
    data.pop("externalId", None)
    out.update(data)  # `active` only when assigned (see below)
    if groups is not None:
        out["groups"] = [
            {"value": tid, "$ref": f"{base}/Groups/{tid}", "display": name, "type": "direct"}
            for tid, name in groups
        ]
    out["meta"] = _meta(USER, row, base)
    out["schemas"] = _schemas(USER, out)
    return out


def render_group(row: Team, *, base: str, members: Sequence[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The full Group resource; `members` (user id, userName) are rendered when given."""
    data = copy.deepcopy(row.data)
    out: dict[str, Any] = {"schemas": [GROUP.core.id], "id": row.id}
    if row.external_id is not None:
        out["externalId"] = row.external_id
    data.pop("externalId", None)
    out.update(data)
    if members is not None:
        out["members"] = [
            {"value": uid, "$ref": f"{base}/Users/{uid}", "display": name, "type": "User"}
            for uid, name in members
        ]
    out["meta"] = _meta(GROUP, row, base)
    return out


def list_response(resources: list[dict[str, Any]], total: int, start_index: int) -> dict[str, Any]:
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": int(total),
        "startIndex": int(start_index),
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


# -- projection ------------------------------------------------------------------------------


def _path(rt: ResourceType, name: str) -> list[str] | None:
    """The canonical key path of an attribute name from `attributes`, or None if unknown."""
    name = name.strip()
    if not name:
        return None
    schema, rest = rt.core, name
    if name.lower().startswith("urn:"):
        hit = split_urn(name, rt)
        if hit is None:
            return None
        schema, rest = hit
        if rest == "":
            return None if schema is rt.core else [schema.id]
    head, _, sub = rest.partition(".")
    if schema is rt.core and head.lower() == "meta":
        if not sub:
            return ["meta"]
        key = _META_SUBS.get(sub.lower())
        return ["meta", key] if key else None
    if schema is rt.core and head.lower() == "schemas":
        return ["schemas"]
    attr = schema.attr(head)
    if attr is None and schema is rt.core and "." not in head:
        for ext in rt.extensions:  # an unqualified extension attribute name
            if (attr := ext.attr(head)) is not None:
                schema = ext
                break
    if attr is None:
        return None
    prefix = [] if schema is rt.core else [schema.id]
    if not sub:
        return [*prefix, attr.name]
    child = attr.child(sub)
    return [*prefix, attr.name, child.name] if child is not None else None


def _tree(rt: ResourceType, names: Iterable[str]) -> Tree:
    tree: Tree = {}
    for name in names:
        path = _path(rt, name)
        if path is None:
            continue
        node = tree
        for key in path[:-1]:
            nxt = node.get(key)
            if nxt is True:
                break
            node = node.setdefault(key, {})
        else:
            node[path[-1]] = True
    return tree


def _pick(value: Any, tree: Tree | bool) -> Any:
    if tree is True:
        return value
    assert isinstance(tree, dict)
    if isinstance(value, list):
        items = [_pick(v, tree) for v in value]
        return [v for v in items if v not in (None, {})] or None
    if isinstance(value, dict):
        out = {k: _pick(value[k], t) for k, t in tree.items() if k in value}
        return {k: v for k, v in out.items() if v is not None} or None
    return None


def _drop(value: Any, tree: Tree) -> None:
    if isinstance(value, list):
        for v in value:
            _drop(v, tree)
        return
    if not isinstance(value, dict):
        return
    for key, sub in tree.items():
        if sub is True:
            value.pop(key, None)
        elif key in value:
            _drop(value[key], sub)
            if value[key] in ({}, []):
                value.pop(key)


def split_list(value: str | Sequence[str] | None) -> list[str]:
    """`"a, b"` or `["a", "b"]` (a SearchRequest) → ["a", "b"]."""
    if value is None:
        return []
    parts = value.split(",") if isinstance(value, str) else [p for v in value for p in str(v).split(",")]
    return [p.strip() for p in parts if p.strip()]


@dataclass(frozen=True)
class Projection:
    """What `attributes` / `excludedAttributes` ask to be returned for one resource type."""

    rt: ResourceType
    include: Tree | None  # None: everything returned by default
    exclude: Tree

    @classmethod
    def parse(
        cls,
        rt: ResourceType,
        attributes: str | Sequence[str] | None = None,
        excluded: str | Sequence[str] | None = None,
    ) -> Projection:
        inc = split_list(attributes)
        return cls(rt, _tree(rt, inc) if inc else None, _tree(rt, split_list(excluded)))

    @property
    def given(self) -> bool:
        return self.include is not None or bool(self.exclude)

    def wants(self, key: str) -> bool:
        """Whether top-level attribute `key` (e.g. "members", "groups") may appear at all."""
        if self.exclude.get(key) is True:
            return False
        return self.include is None or key in self.include

    def apply(self, resource: dict[str, Any]) -> dict[str, Any]:
        if not self.given:
            return resource
        if self.include is not None:
            tree = {**self.include, **dict.fromkeys(ALWAYS, True)}
            out = _pick(resource, tree) or {}
        else:
            out = copy.deepcopy(resource)
        excl = {k: v for k, v in self.exclude.items() if k not in ALWAYS}
        _drop(out, excl)
        out["schemas"] = _schemas(self.rt, out)
        ordered = {"schemas": out.pop("schemas"), "id": out.pop("id", resource.get("id"))}
        ordered.update(out)
        return ordered
