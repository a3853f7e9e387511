"""What a target holds, as read back: SCIM resources reduced to what the diff compares.

Attributes a target did not return are None (not compared). `active` is None when absent; a
LiteLLM-style gateway always answers true (write-only), which is why the id map remembers
the last acknowledged value and the diff trusts that record over the read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from syncd.targets.client import ScimClient
from syncd.targets.errors import BadResponse, TargetError
from syncd.targets.paging import IndexPaging


@dataclass(frozen=True, slots=True)
class RemoteUser:
    id: str
    user_name: str | None
    emails: frozenset[str] = frozenset()  # casefolded
    external_id: str | None = None
    active: bool | None = None
    given_name: str | None = None
    family_name: str | None = None

    @classmethod
    def parse(cls, r: dict[str, Any]) -> RemoteUser:
        emails = r.get("emails") if isinstance(r.get("emails"), list) else []
        name = r.get("name") if isinstance(r.get("name"), dict) else {}
        active = r.get("active")
        return cls(
            r["id"],
            _s(r.get("userName")),
            frozenset(e["value"].casefold() for e in emails if isinstance(e, dict) and _s(e.get("value"))),
            _s(r.get("externalId")),
            active if isinstance(active, bool) else None,
            _s(name.get("givenName")),
            _s(name.get("familyName")),
        )


@dataclass(frozen=True, slots=True)
class RemoteGroup:
    id: str
    display_name: str | None
    external_id: str | None = None
    members: frozenset[str] = frozenset()  # remote user ids

    @classmethod
    def parse(cls, r: dict[str, Any]) -> RemoteGroup:
        members = r.get("members") if isinstance(r.get("members"), list) else []
        return cls(
            r["id"],
            _s(r.get("displayName")),
            _s(r.get("externalId")),
            frozenset(m["value"] for m in members if isinstance(m, dict) and _s(m.get("value"))),
        )


@dataclass
class RemoteState:
    users: dict[str, RemoteUser] = field(default_factory=dict)
    groups: dict[str, RemoteGroup] = field(default_factory=dict)
    complete: bool = True
    error: str | None = None


def _s(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def read_target(client: ScimClient, *, on_page: Any = None) -> RemoteState:
    """Every User and Group of the target. A failed or non-paging read ends as incomplete
    (`complete=False`, `error` says why) with what was read so far; refusals propagate."""
    from syncd.targets.errors import Refused

    state = RemoteState()
    for resource, parse, into in (
        ("Users", RemoteUser.parse, state.users),
        ("Groups", RemoteGroup.parse, state.groups),
    ):
        try:
            for page in IndexPaging().pages(client, resource):
                for r in page:
                    into[r["id"]] = parse(r)
                if on_page is not None:
                    on_page(resource, len(into))
        except Refused:
            raise
        except (TargetError, BadResponse) as exc:
            state.complete, state.error = False, f"reading {resource}: {exc}"
            if not (state.users or state.groups):
                raise
            break
    return state
