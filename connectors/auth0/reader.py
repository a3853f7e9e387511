"""Auth0 JSON objects → snapshot values. Pure functions; no I/O.

userName is the user's `email`, else `username`, else `user_id` (see docs/mapping.md): Auth0
users sign in with their email on most connections (database, social, enterprise), `username`
exists only on database connections that require one, and `user_id` (`auth0|…`,
`google-oauth2|…`) is the stable id that becomes `externalId`. `blocked: true` users are
inactive; the field is absent on users never blocked.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from syncd.reconcile.snapshot import SnapshotGroup, SnapshotUser

#: The user fields a users-export job is asked for (everything `to_user` reads).
EXPORT_FIELDS = ("user_id", "email", "username", "name", "given_name", "family_name", "blocked")
#: Teams sources: Auth0 has no groups; roles and/or organizations stand in for them.
TEAM_SOURCES = ("roles", "organizations", "both")


def user_name(obj: dict[str, Any]) -> str:
    return obj.get("email") or obj.get("username") or obj["user_id"]


def to_user(obj: dict[str, Any]) -> SnapshotUser:
    """A SnapshotUser from a user object (list, lookup or export line)."""
    uid = obj["user_id"]
    if not isinstance(uid, str) or not uid:
        raise KeyError("user_id")
    given, family = obj.get("given_name"), obj.get("family_name")
    display = obj.get("name") or " ".join(x for x in (given, family) if x) or None
    return SnapshotUser(
        external_id=uid,
        user_name=user_name(obj),
        active=obj.get("blocked") is not True,
        email=obj.get("email"),
        display_name=display,
        given_name=given,
        family_name=family,
    )


def role_to_group(obj: dict[str, Any], member_ids: Iterable[str] = ()) -> SnapshotGroup:
    return SnapshotGroup(
        external_id=obj["id"],
        display_name=obj.get("name") or obj["id"],
        member_ids=frozenset(member_ids),
        description=obj.get("description") or None,
    )


def org_to_group(obj: dict[str, Any], member_ids: Iterable[str] = ()) -> SnapshotGroup:
    """An organization: `display_name` (free text) if set, else its `name` (a slug)."""
    name = obj.get("display_name") or obj.get("name") or obj["id"]
    return SnapshotGroup(external_id=obj["id"], display_name=name, member_ids=frozenset(member_ids))


def export_users(lines: bytes) -> Iterable[dict[str, Any]]:
    """The user objects of an uncompressed users-export file (NDJSON: one object a line)."""
    import orjson

    for line in lines.splitlines():
        line = line.strip()
        if line:
            obj = orjson.loads(line)
            if not isinstance(obj, dict):
                raise TypeError("an export line is not a JSON object")
            yield obj
