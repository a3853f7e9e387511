"""OneLogin JSON objects → snapshot values, user state/status codes, and cursor headers.

Pure functions; no I/O.

Ids: OneLogin ids are integers. A user's external id is its id as a decimal string, the value
OneLogin's SCIM provisioner sends as `externalId` (`{$user.id}` in its default SCIM user
template), so a user pushed over SCIM and the same user pulled converge on one row. Team ids
carry their source: `role:<id>` for a role, `group:<id>` for a group (role and group ids are
separate number spaces; `teams = "both"` must not merge role 7 with group 7).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from syncd.reconcile.snapshot import SnapshotGroup, SnapshotUser

#: `state`: 0 unapproved, 1 approved, 2 rejected, 3 unlicensed. Only an approved user may sign
#: in; an absent state (older objects, trimmed `fields`) leaves the decision to `status`.
ACTIVE_STATES = frozenset({1})
#: `status`: 0 unactivated, 1 active, 2 suspended, 3 locked, 4 password expired, 5 awaiting
#: password reset, 7 password pending, 8 security questions required. Locked (the lock ends),
#: password expired, awaiting password reset and security questions required are activated
#: users who get back in on their own: active, as Okta's LOCKED_OUT/PASSWORD_EXPIRED/RECOVERY.
#: Unactivated and password pending users have never signed in (invited, no password yet),
#: suspended users were stopped by an admin: inactive. Unknown codes are inactive.
ACTIVE_STATUSES = frozenset({1, 3, 4, 5, 8})
ALL_STATUSES = (0, 1, 2, 3, 4, 5, 7, 8)
TEAM_SOURCES = ("roles", "groups", "both")


def is_active(state: Any, status: Any) -> bool:
    return (state is None or state in ACTIVE_STATES) and status in ACTIVE_STATUSES


def user_id(value: Any) -> str:
    """The external id of a OneLogin user id (int, or a numeric str)."""
    return str(int(value))


def role_id(value: Any) -> str:
    return f"role:{int(value)}"


def group_id(value: Any) -> str:
    return f"group:{int(value)}"


def parse_team_id(external_id: str) -> tuple[str, int] | None:
    """("role" | "group", numeric id) of a team external id, or None."""
    kind, _, num = external_id.partition(":")
    if kind not in ("role", "group") or not num.isdigit():
        return None
    return kind, int(num)


def to_user(obj: Mapping[str, Any]) -> SnapshotUser:
    """A SnapshotUser from a OneLogin v2 user; user_name is `username`, else `email`."""
    given, family = obj.get("firstname") or None, obj.get("lastname") or None
    display = " ".join(x for x in (given, family) if x) or None
    email = obj.get("email") or None
    uid = user_id(obj["id"])
    return SnapshotUser(
        external_id=uid,
        user_name=obj.get("username") or email or uid,
        active=is_active(obj.get("state"), obj.get("status")),
        email=email,
        display_name=display,
        given_name=given,
        family_name=family,
    )


def to_role(obj: Mapping[str, Any], member_ids: Iterable[str] = ()) -> SnapshotGroup:
    rid = role_id(obj["id"])
    return SnapshotGroup(
        external_id=rid, display_name=obj.get("name") or rid, member_ids=frozenset(member_ids)
    )


def to_group(obj: Mapping[str, Any], member_ids: Iterable[str] = ()) -> SnapshotGroup:
    gid = group_id(obj["id"])
    return SnapshotGroup(
        external_id=gid,
        display_name=obj.get("name") or gid,
        member_ids=frozenset(member_ids),
        description=obj.get("reference") or None,
    )


def after_cursor(headers: Mapping[str, str]) -> str | None:
    """The v2 next-page cursor: the `After-Cursor` header, absent or empty on the last page."""
    value = headers.get("After-Cursor") or headers.get("after-cursor")
    return value.strip() or None if value else None


def v1_after_cursor(doc: Mapping[str, Any]) -> str | None:
    """The v1 next-page cursor: `pagination.after_cursor` in the body (null on the last page)."""
    pag = doc.get("pagination") or {}
    value = pag.get("after_cursor") if isinstance(pag, Mapping) else None
    return str(value) if value else None
