"""Change kinds and the pure mapping from a service-layer event to the changes it means.

A service event is what the audit trail records: (action, resource type, resource id,
before, after), e.g. ("user.patch", "user", id, {...}, {...}). `changes_for` turns one into
zero or more `Spec`s, in the order a reader should apply them. Invariants:

- Every change kind is one of `KINDS`; tokens and other non-directory resources yield none.
- An attribute update that also flips `active` yields `user.updated` then
  `user.deactivated` / `user.reactivated`; a team update yields `team.renamed` (displayName),
  `team.updated` (any other attribute), then `team.members_added`, `team.members_removed`.
- Deleting a user or a team implies the removal of its memberships; no member change is
  written for them (`user.deleted` lists the `team_ids` the user left).
- `name` is the userName / displayName when the event carries it; the writer looks it up
  otherwise. Member changes carry `data["members"]` as user ids (so are they stored); the
  reader turns them into `{"id", "userName"}` objects (userName null for a user deleted since).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

USER_CREATED = "user.created"
USER_UPDATED = "user.updated"
USER_DEACTIVATED = "user.deactivated"
USER_REACTIVATED = "user.reactivated"
USER_DELETED = "user.deleted"
TEAM_CREATED = "team.created"
TEAM_RENAMED = "team.renamed"
TEAM_UPDATED = "team.updated"
TEAM_ARCHIVED = "team.archived"
TEAM_UNARCHIVED = "team.unarchived"
TEAM_DELETED = "team.deleted"
TEAM_MEMBERS_ADDED = "team.members_added"
TEAM_MEMBERS_REMOVED = "team.members_removed"

KINDS: tuple[str, ...] = (
    USER_CREATED,
    USER_UPDATED,
    USER_DEACTIVATED,
    USER_REACTIVATED,
    USER_DELETED,
    TEAM_CREATED,
    TEAM_RENAMED,
    TEAM_UPDATED,
    TEAM_ARCHIVED,
    TEAM_UNARCHIVED,
    TEAM_DELETED,
    TEAM_MEMBERS_ADDED,
    TEAM_MEMBERS_REMOVED,
)

_MEMBER_KEYS = ("members_added", "members_removed")


@dataclass(frozen=True)
class Spec:
    """A change to write: kind, resource, its name (None: look it up) and kind-specific data."""

    kind: str
    resource_type: str
    resource_id: str
    name: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def changes_for(
    action: str,
    resource_type: str,
    resource_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> list[Spec]:
    """The changes one service event means (see the module docstring)."""
    b, a = before or {}, after or {}
    if resource_type == "user":
        return _user(action, resource_id, b, a)
    if resource_type == "team":
        return _team(action, resource_id, b, a, before is not None)
    return []


def _user(action: str, rid: str, b: dict[str, Any], a: dict[str, Any]) -> list[Spec]:
    if action == "user.create":
        data = {"externalId": a.get("externalId"), "active": a.get("active", True)}
        return [Spec(USER_CREATED, "user", rid, a.get("userName"), data)]
    if action == "user.delete":
        return [
            Spec(USER_DELETED, "user", rid, b.get("userName"), {"team_ids": list(a.get("teams_left", []))})
        ]
    out: list[Spec] = []
    name = a.get("userName") or b.get("userName")
    changed = sorted(k for k in set(a) | set(b) if k != "active" and a.get(k) != b.get(k))
    if changed:
        data: dict[str, Any] = {"changed": changed}
        if "userName" in changed:
            data["previous_userName"] = b.get("userName")
        out.append(Spec(USER_UPDATED, "user", rid, name, data))
    was, now = b.get("active", True), a.get("active", True)
    if was and not now:
        out.append(Spec(USER_DEACTIVATED, "user", rid, name))
    elif now and not was:
        out.append(Spec(USER_REACTIVATED, "user", rid, name))
    return out


def _team(action: str, rid: str, b: dict[str, Any], a: dict[str, Any], has_before: bool) -> list[Spec]:
    attrs = {k: v for k, v in a.items() if k not in _MEMBER_KEYS}
    name = attrs.get("displayName") or b.get("displayName")
    if action == "team.create":
        out = [Spec(TEAM_CREATED, "team", rid, name, {"externalId": attrs.get("externalId")})]
    elif action == "team.delete":
        return [Spec(TEAM_DELETED, "team", rid, name, {})]
    elif action in ("team.archive", "team.restore"):
        kind = TEAM_ARCHIVED if action == "team.archive" else TEAM_UNARCHIVED
        return [Spec(kind, "team", rid, name, {})]
    else:
        out = []
        if has_before and attrs:
            if attrs.get("displayName") != b.get("displayName"):
                out.append(
                    Spec(TEAM_RENAMED, "team", rid, name, {"previous_displayName": b.get("displayName")})
                )
            other = sorted(k for k in set(attrs) | set(b) if k != "displayName" and attrs.get(k) != b.get(k))
            if other:
                out.append(Spec(TEAM_UPDATED, "team", rid, name, {"changed": other}))
    if a.get("members_added"):
        out.append(Spec(TEAM_MEMBERS_ADDED, "team", rid, name, {"members": list(a["members_added"])}))
    if a.get("members_removed"):
        out.append(Spec(TEAM_MEMBERS_REMOVED, "team", rid, name, {"members": list(a["members_removed"])}))
    return out
