"""Admission stage (pure): IdP data is brought within the service's limits before the diff.

A SCIM client that sends a control character or an over-long name gets a 400 and fixes its
request; a connector cannot, and refusing its snapshot would stop every run of the directory
until someone renames the object in the IdP. So a pull never fails on such data:

- Control characters (those `syncd.service.limits` refuses) are removed from every name, email
  and display string of the snapshot (external ids are matched, never rewritten: one with a
  control character is held, below); whitespace controls (tab, LF, CR, VT, FF, NEL) become a
  space, lone surrogates U+FFFD. This is deterministic: the same IdP value is always stored
  the same way, so the next run finds nothing to change.
- A user or group that still breaks a limit once cleaned (a blank or over-long userName or
  name, an over-long externalId, email or display name: the service's own check decides) is
  *held*, with a note in the run: a stored one keeps its stored attributes (no rename, no
  deactivation for having "left"; its memberships and active flag still follow the IdP), a new
  one is not created (and so gets no memberships).

A group name must also leave room for the ` (<external id>)` that the diff appends to
duplicate names, so the longest accepted group name is NAME_MAX minus that suffix.
"""

from __future__ import annotations

import re
from dataclasses import replace

from syncd.reconcile.apply import user_body
from syncd.reconcile.snapshot import Snapshot, SnapshotGroup, SnapshotUser, UserGroups
from syncd.reconcile.view import StoreView
from syncd.service.errors import InvalidValue
from syncd.service.limits import NAME_MAX, bad_char, length
from syncd.service.resource import normalize, require
from syncd.service.schema import GROUP, USER

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_SPACE = frozenset("\t\n\x0b\x0c\r\x85")
#: a value this short cannot break a length limit, even casefolded (one character folds to at
#: most three): only longer ones, and ones with a control character, are checked in full
_SHORT = NAME_MAX // 3


def clean_text(value: str) -> str:
    """`value` without the characters the service refuses (see the module docstring)."""
    if bad_char(value) is None:
        return value

    def sub(m: re.Match[str]) -> str:
        c = m.group()
        return " " if c in _SPACE else ("\ufffd" if "\ud800" <= c <= "\udfff" else "")

    return _CONTROL.sub(sub, value)


def _clean_group(g: SnapshotGroup) -> SnapshotGroup:
    return g if bad_char(g.display_name) is None else replace(g, display_name=clean_text(g.display_name))


def _opt(value: str | None) -> str | None:
    return None if value is None else clean_text(value)


def _plain(u: SnapshotUser) -> bool:
    """Whether `u` surely needs no cleaning and breaks no limit: all its strings together are
    short and hold no control character (one regex search; the common case)."""
    joined = (
        f"{u.user_name}{u.external_id}{u.email or ''}{u.display_name or ''}{u.given_name or ''}"
        f"{u.family_name or ''}"
    )
    return (
        len(joined) <= _SHORT
        and _CONTROL.search(joined) is None
        and not (u.user_name.isspace() or not u.user_name)
    )


def _suspect(*values: str | None) -> bool:
    return any(v is not None and (len(v) > _SHORT or not v.strip() or bad_char(v)) for v in values)


def _clean_user(u: SnapshotUser) -> SnapshotUser:
    fields = (u.user_name, u.email, u.display_name, u.given_name, u.family_name)
    if all(v is None or bad_char(v) is None for v in fields):
        return u
    return replace(
        u,
        user_name=clean_text(u.user_name),
        email=_opt(u.email),
        display_name=_opt(u.display_name),
        given_name=_opt(u.given_name),
        family_name=_opt(u.family_name),
    )


def _user_problem(u: SnapshotUser) -> str | None:
    if not _suspect(u.external_id, u.user_name, u.email, u.display_name, u.given_name, u.family_name):
        return None
    try:
        require(USER, normalize(USER, user_body(u)))
    except InvalidValue as exc:
        return exc.detail
    return None


def _group_problem(g: SnapshotGroup) -> str | None:
    if not _suspect(g.external_id, g.display_name):
        return None
    try:
        require(GROUP, normalize(GROUP, {"displayName": g.display_name, "externalId": g.external_id}))
    except InvalidValue as exc:
        return exc.detail
    n = length(f"{g.display_name} ({g.external_id})", folded=True)
    if n > NAME_MAX:
        return f"displayName with the ' (<id>)' a duplicate name gets is {n} characters; at most {NAME_MAX}"
    return None


def admit(snapshot: Snapshot, view: StoreView) -> tuple[Snapshot, list[str]]:
    """`snapshot` cleaned and with the objects it cannot store held; and a note per held one."""
    notes: list[str] = []
    users: dict[str, SnapshotUser] = {}
    for key, raw in snapshot.users.items():
        if _plain(raw):
            users[key] = raw
            continue
        u = _clean_user(raw)
        problem = _user_problem(u)
        if problem is None:
            users[key] = u
            continue
        row = view.users.get(key)
        shown = key if len(key) <= 80 else key[:77] + "..."
        if row is None:
            notes.append(f"user {shown!r} not created: {problem}")
            continue
        notes.append(f"user {shown!r} keeps its stored attributes: {problem}")
        users[key] = SnapshotUser(
            key, row.user_name, u.active, row.email, row.display_name, row.given_name, row.family_name
        )
    groups: dict[str, SnapshotGroup] = {}
    for key, raw in snapshot.groups.items():
        g = (
            raw
            if bad_char(raw.display_name) is None
            else replace(raw, display_name=clean_text(raw.display_name))
        )
        problem = _group_problem(g)
        if problem is None:
            groups[key] = g
            continue
        shown = key if len(key) <= 80 else key[:77] + "..."
        team = view.teams.get(key)
        if team is None:
            notes.append(f"group {shown!r} not created: {problem}")
            continue
        notes.append(f"group {shown!r} keeps its stored name: {problem}")
        groups[key] = replace(g, display_name=team.display_name)
    return replace(snapshot, users=users, groups=groups), notes


def clean_user_groups(ug: UserGroups) -> UserGroups:
    """The login path's answer with control characters removed as `admit` does. The login only
    creates what the store lacks, so a user or group still beyond the limits is simply not
    created; the login notes it."""
    user = None if ug.user is None else _clean_user(ug.user)
    return replace(ug, user=user, groups=tuple(_clean_group(g) for g in ug.groups))
