"""Okta JSON objects → snapshot values, and Okta's query expressions and timestamps.

Pure functions; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from syncd.reconcile.snapshot import SnapshotGroup, SnapshotUser

#: Statuses that count as an active account. ACTIVE, PASSWORD_EXPIRED, LOCKED_OUT and RECOVERY
#: are all *activated* users who may sign in again on their own (by changing or resetting a
#: password, or when the lockout ends): removing their gateway access would be wrong. STAGED and
#: PROVISIONED users have never been activated (they cannot sign in yet), SUSPENDED users have
#: been stopped by an admin, and DEPROVISIONED users are deactivated: all three are inactive.
ACTIVE_STATUSES = frozenset({"ACTIVE", "PASSWORD_EXPIRED", "LOCKED_OUT", "RECOVERY"})
ALL_STATUSES = ("ACTIVE", "PASSWORD_EXPIRED", "LOCKED_OUT", "RECOVERY",
                "STAGED", "PROVISIONED", "SUSPENDED", "DEPROVISIONED")
GROUP_TYPES = frozenset({"OKTA_GROUP", "APP_GROUP", "BUILT_IN"})

#: System Log event types recording deletions (list filters cannot see deleted objects).
DELETE_EVENTS = ("user.lifecycle.delete.initiated", "group.lifecycle.delete")


def is_active(status: str | None) -> bool:
    return status in ACTIVE_STATUSES


def to_user(obj: dict[str, Any]) -> SnapshotUser:
    """A SnapshotUser from an Okta user object; user_name is `profile.login` (sign-in name)."""
    p = obj.get("profile") or {}
    given, family = p.get("firstName"), p.get("lastName")
    display = p.get("displayName") or " ".join(x for x in (given, family) if x) or None
    return SnapshotUser(external_id=obj["id"], user_name=p.get("login") or obj["id"],
                        active=is_active(obj.get("status")), email=p.get("email"),
                        display_name=display, given_name=given, family_name=family)


def to_group(obj: dict[str, Any], member_ids: Iterable[str] = ()) -> SnapshotGroup:
    p = obj.get("profile") or {}
    return SnapshotGroup(external_id=obj["id"], display_name=p.get("name") or obj["id"],
                         member_ids=frozenset(member_ids), description=p.get("description"))


def quote_value(value: str) -> str:
    """A string literal for an Okta filter/search expression."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def any_of(attr: str, values: Iterable[str]) -> str:
    return " or ".join(f"{attr} eq {quote_value(v)}" for v in values)


def all_statuses_filter() -> str:
    """Every status, so the list includes DEPROVISIONED users (omitted without a filter)."""
    return any_of("status", ALL_STATUSES)


def okta_time(epoch_s: float) -> str:
    """Okta's timestamp form, UTC with milliseconds: `2024-05-01T12:00:00.000Z`."""
    ms = int(epoch_s * 1000)
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") \
        + f"{ms % 1000:03d}Z"


def parse_cursor(cursor: str) -> float | None:
    """Epoch seconds of a cursor made by `okta_time`, or None if it is not one."""
    try:
        dt = datetime.fromisoformat(cursor.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    if dt.tzinfo is None:
        return None
    return dt.timestamp()
