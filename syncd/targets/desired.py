"""A target's desired state: the store's users and teams of its sources, mapped for the target.

- Teams: every non-archived team of a source directory, named by the target's `team_name`
  template (`{name}`, `{directory}`). Two teams mapping to one name: the first by (directory,
  name) is delivered, the other is left out with a note (fix: a template with `{directory}`).
- Users: active users of the sources; with `users = "members"` only those in a delivered team.
  An inactive or out-of-scope user is not desired: delivering it is the target's `on_user_left`.
- Members of a team: its desired users (memberships of every source, manual ones included).
- `externalId` sent for a row is its IdP object id (what the gateway keeps as the SSO id), else
  its local id.

`load_desired` reads everything (full reconcile); `load_subset` only the named users and teams
(incremental delivery), with the same rules.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, select
from sqlmodel import Session

from syncd.config.models import ScimTarget
from syncd.store.models import Membership, Team, User, UserEmail
from syncd.targets.client import GROUP_SCHEMA, USER_SCHEMA

_CHUNK = 500


@dataclass(frozen=True, slots=True)
class DesiredUser:
    local_id: str
    user_name: str
    external_id: str
    display_name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    emails: tuple[tuple[str, str | None, bool], ...] = ()  # (value, type, primary)

    @property
    def email(self) -> str | None:
        return next((v for v, _, p in self.emails if p), self.emails[0][0] if self.emails else None)

    def body(self, *, active: bool = True) -> dict[str, Any]:
        """The SCIM User sent on create and replace; the primary email first (LiteLLM reads
        only the first)."""
        emails = sorted(self.emails, key=lambda e: not e[2])
        body: dict[str, Any] = {
            "schemas": [USER_SCHEMA],
            "userName": self.user_name,
            "externalId": self.external_id,
            "active": active,
            "emails": [{"value": v, **({"type": t} if t else {}), "primary": p} for v, t, p in emails],
        }
        name = {k: v for k, v in (("givenName", self.given_name), ("familyName", self.family_name)) if v}
        if name:
            body["name"] = name
        if self.display_name:
            body["displayName"] = self.display_name
        return body

    def digest(self) -> str:
        return _digest(self.body())


@dataclass(frozen=True, slots=True)
class DesiredTeam:
    local_id: str
    display_name: str
    external_id: str
    members: frozenset[str] = frozenset()  # local user ids

    def body(self, member_ids: Iterable[str] = ()) -> dict[str, Any]:
        body: dict[str, Any] = {
            "schemas": [GROUP_SCHEMA],
            "displayName": self.display_name,
            "externalId": self.external_id,
        }
        body["members"] = [{"value": m} for m in member_ids]
        return body

    def digest(self) -> str:
        return _digest({"displayName": self.display_name, "externalId": self.external_id})


@dataclass
class Desired:
    users: dict[str, DesiredUser] = field(default_factory=dict)
    teams: dict[str, DesiredTeam] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]


def team_name(template: str, *, name: str, directory: str | None) -> str:
    return template.format(name=name, directory=directory or "local")


def _source_clause(col: Any, target: ScimTarget) -> Any:
    return col.in_(target.sources) if target.sources is not None else col.is_not(None)


def _chunks(ids: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


def load_desired(session: Session, target: ScimTarget) -> Desired:
    """The whole desired state of `target` (a fixed number of queries, streamed memberships)."""
    return _load(session, target, None, None)


def load_subset(session: Session, target: ScimTarget, *, user_ids: set[str], team_ids: set[str]) -> Desired:
    """The desired state restricted to these users and teams. A team's `members` are its
    desired members among all users (not just `user_ids`); absent ids are not desired."""
    return _load(session, target, user_ids, team_ids)


def _load(
    session: Session, target: ScimTarget, user_ids: set[str] | None, team_ids: set[str] | None
) -> Desired:
    conn = session.connection()
    out = Desired()
    t = Team.__table__.c  # type: ignore[attr-defined]
    tq = select(t.id, t.directory, t.display_name, t.external_id).where(
        _source_clause(t.directory, target), t.archived.is_(False)
    )
    # names are claimed by every delivered team, so a subset load names teams as a full one does
    rows = sorted(conn.execute(tq).all(), key=lambda r: (r.directory or "", r.display_name.casefold(), r.id))
    claimed: dict[str, str] = {}
    team_rows = {}
    for tid, directory, name, ext in rows:
        mapped = team_name(target.team_name, name=name, directory=directory)
        key = mapped.casefold()
        if key in claimed:
            if team_ids is None or tid in team_ids:
                out.notes.append(
                    f"team {name!r} of {directory} maps to {mapped!r}, already taken by another "
                    'source\'s team: not delivered (use team_name = "{directory}/{name}")'
                )
            continue
        claimed[key] = tid
        team_rows[tid] = (mapped, ext or tid)
    u = User.__table__.c  # type: ignore[attr-defined]
    m = Membership.__table__.c  # type: ignore[attr-defined]
    uq = select(u.id, u.user_name, u.external_id, u.display_name, u.given_name, u.family_name).where(
        _source_clause(u.directory, target), u.active.is_(True)
    )
    candidates: dict[str, Any] = {}
    if user_ids is None:
        candidates = {r.id: r for r in conn.execute(uq).all()}
    else:
        for part in _chunks(sorted(user_ids)):
            candidates.update({r.id: r for r in conn.execute(uq.where(u.id.in_(part))).all()})
    members: dict[str, set[str]] = {}
    in_team: set[str] = set()
    wanted_teams = set(team_rows) if team_ids is None else set(team_rows) & team_ids
    if target.users == "members" or wanted_teams:
        mq = select(m.team_id, m.user_id)
        if team_ids is None:
            parts = [conn.execute(mq).all()]
        else:
            parts = [conn.execute(mq.where(m.team_id.in_(p))).all() for p in _chunks(sorted(wanted_teams))]
            if target.users == "members" and candidates:
                parts += [conn.execute(mq.where(m.user_id.in_(p))).all() for p in _chunks(sorted(candidates))]
        for part in parts:
            for tid, uid in part:
                if tid not in team_rows:
                    continue
                in_team.add(uid)
                if tid in wanted_teams:
                    members.setdefault(tid, set()).add(uid)
    # users that are members of wanted teams but not asked for: needed to know who is desired
    if team_ids is not None:
        extra = {uid for ms in members.values() for uid in ms} - set(candidates)
        for part in _chunks(sorted(extra)):
            active = {
                r.id
                for r in conn.execute(
                    select(u.id).where(
                        and_(_source_clause(u.directory, target), u.active.is_(True), u.id.in_(part))
                    )
                )
            }
            for ms in members.values():
                ms.difference_update(set(part) - active)
    desired_uids = {uid for uid in candidates if target.users == "all" or uid in in_team}
    emails = _emails(conn, sorted(desired_uids) if user_ids is not None else None)
    for uid in desired_uids:
        r = candidates[uid]
        out.users[uid] = DesiredUser(
            uid,
            r.user_name,
            r.external_id or uid,
            r.display_name,
            r.given_name,
            r.family_name,
            tuple(emails.get(uid, ())),
        )
    for tid in wanted_teams:
        mapped, ext = team_rows[tid]
        ms = members.get(tid, set())
        if user_ids is None:
            ms = ms & desired_uids
        out.teams[tid] = DesiredTeam(tid, mapped, ext, frozenset(ms))
    return out


def _emails(conn: Any, uids: list[str] | None) -> dict[str, list[tuple[str, str | None, bool]]]:
    e = UserEmail.__table__.c  # type: ignore[attr-defined]
    q = select(e.user_id, e.value, e.type, e.primary).order_by(e.user_id, e.id)
    out: dict[str, list[tuple[str, str | None, bool]]] = {}
    rows = (
        [conn.execute(q).all()]
        if uids is None
        else [conn.execute(q.where(e.user_id.in_(p))).all() for p in _chunks(uids)]
    )
    for part in rows:
        for uid, value, typ, primary in part:
            out.setdefault(uid, []).append((value, typ, bool(primary)))
    return out
