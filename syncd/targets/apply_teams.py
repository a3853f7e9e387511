"""The team half of `Applier`: creating (with the first members), adopting, renaming,
recreating a team deleted behind syncd's back, and member adds/removes chunked by
`member_chunk`. Mixed into `Applier`, whose state (id map, owners, errors) it shares."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from syncd.targets import state as st
from syncd.targets.desired import Desired, DesiredTeam
from syncd.targets.errors import Conflict, Gone, Rejected, Transient
from syncd.targets.state import Mapped

if TYPE_CHECKING:
    from syncd.targets.apply import Applier

    _Base = Applier
else:
    _Base = object

LOOKUP_RETRIES = 4


class TeamWrites(_Base):
    # -- teams --------------------------------------------------------------------------------

    def _remote_user(self, lid: str) -> str | None:
        m = self.idmap.get(("user", lid))
        return m.remote_id if m is not None else None

    def _resolve(self, user_lids: Iterable[str]) -> None:
        """Load the map rows of users this apply was not given (an incremental apply holds only
        the touched objects; recreating a team needs every member's remote id)."""
        missing = [u for u in user_lids if ("user", u) not in self.idmap]
        if missing:
            got = st.load_some(self.engine, self.name, [("user", u) for u in missing])
            with self._lock:
                for k, m in got.items():
                    self.idmap.setdefault(k, m)
                    if m.remote_id is not None:
                        self._owners.setdefault(("user", m.remote_id), m.local_id)

    def _lookup_team(self, t: DesiredTeam) -> dict[str, Any] | None:
        """The target's copy of a team whose create may have happened (it may have been renamed
        since): by displayName, by externalId, then as the id (LiteLLM makes the externalId
        the team id)."""
        found = self.client.find("Groups", "displayName", t.display_name)
        if not found:
            found = self.client.find("Groups", "externalId", t.external_id, scan=False)
        if not found:
            try:
                got = self.client.get("Groups", t.external_id)
            except (Gone, Rejected):
                return None
            owner = self._owner("team", got["id"])
            found = [got] if owner in (None, t.local_id) else []
        return found[0] if len(found) == 1 else None

    def _create_team(self, t: DesiredTeam, adds: dict[str, list[str]], *, look_first: bool) -> None:
        wanted = adds.get(t.local_id, sorted(t.members))
        self._resolve(wanted)
        ids = [r for r in (self._remote_user(u) for u in wanted) if r]
        first = ids[: self.settings.member_chunk]
        for attempt in range(LOOKUP_RETRIES):
            if look_first or attempt:
                got = self._lookup_team(t)
                if got is not None:
                    self._adopt_team(t, got, adds)
                    return
            try:
                got = self.client.create("Groups", t.body(first))
            except Transient:
                if attempt + 1 == LOOKUP_RETRIES:
                    raise
                continue
            except Conflict as exc:
                found = self._lookup_team(t)
                if found is None:
                    self._error(f"team {t.display_name}: {exc.message}; no matching team found to adopt")
                    return
                self._adopt_team(t, found, adds)
                return
            except Rejected as exc:
                self._error(f"team {t.display_name}: {exc.message}")
                return
            self._record(Mapped("team", t.local_id, got["id"], t.digest()))
            self._count("create_team")
            sent = set(first)
            with self._lock:
                adds[t.local_id] = [u for u in wanted if self._remote_user(u) not in sent]
            self._count("add_members", len(first))
            return

    def _adopt_team(self, t: DesiredTeam, found: dict[str, Any], adds: dict[str, list[str]]) -> None:
        """Take over the target's copy (found by a lookup): renamed if its name differs, and
        every desired member added (adds of present members are no-ops)."""
        rid = found["id"]
        owner = self._owner("team", rid)
        if owner is not None and owner != t.local_id:
            self._error(f"team {t.display_name}: the target's {rid} is already mapped to local id {owner}")
            return
        self._record(Mapped("team", t.local_id, rid, None))
        self._count("adopt_team")
        if found.get("displayName") != t.display_name:
            self._rename_team(t, rid, Desired(teams={t.local_id: t}))
        else:
            self._record(Mapped("team", t.local_id, rid, t.digest()))
        with self._lock:
            adds[t.local_id] = sorted(t.members)

    def _rename_team(self, t: DesiredTeam, rid: str, desired: Desired) -> None:
        try:
            self.client.patch(
                "Groups", rid, [{"op": "replace", "path": "displayName", "value": t.display_name}]
            )
        except Gone:
            self._recreate_team(t, desired)
            return
        except (Rejected, Conflict) as exc:
            self._error(f"team {t.display_name}: {exc.message}")
            return
        self._record(Mapped("team", t.local_id, rid, t.digest()))
        self._count("rename_team")

    def _recreate_team(self, t: DesiredTeam, desired: Desired) -> None:
        adds: dict[str, list[str]] = {t.local_id: sorted(t.members)}
        self._create_team(t, adds, look_first=False)
        rest = adds.get(t.local_id)
        if rest:
            self._add_members(t.local_id, rest, desired, recreate=False)

    def _chunks(self, items: list[Any]) -> Iterable[list[Any]]:
        n = self.settings.member_chunk
        for i in range(0, len(items), n):
            yield items[i : i + n]

    def _add_members(
        self, tid: str, user_lids: list[str], desired: Desired, *, recreate: bool = True
    ) -> None:
        m = self.idmap.get(("team", tid))
        if m is None or m.remote_id is None:
            return  # its create failed and was reported
        ids = []
        self._resolve(user_lids)
        for u in user_lids:
            r = self._remote_user(u)
            if r is None:
                self._error(f"team {tid}: member {u} was not delivered; not added")
            else:
                ids.append(r)
        for part in self._chunks(ids):
            try:
                self.client.patch(
                    "Groups",
                    m.remote_id,
                    [{"op": "add", "path": "members", "value": [{"value": r} for r in part]}],
                )
            except Gone:
                t = desired.teams.get(tid)
                if recreate and t is not None:
                    self._recreate_team(t, desired)
                return
            except Rejected as exc:
                self._error(f"team {tid}: adding members: {exc.message}")
                return
            self._count("add_members", len(part))

    def _remove_members(self, tid: str, remote_ids: list[str]) -> None:
        m = self.idmap.get(("team", tid))
        if m is None or m.remote_id is None:
            return
        for part in self._chunks(remote_ids):
            ops = [{"op": "remove", "path": f'members[value eq "{r}"]'} for r in part]
            try:
                self.client.patch("Groups", m.remote_id, ops)
            except Gone:
                return  # the whole team is gone: nothing to remove
            except Rejected as exc:
                self._error(f"team {tid}: removing members: {exc.message}")
                return
            self._count("remove_members", len(part))

    def _delete_team(self, tid: str, rid: str) -> None:
        try:
            self.client.delete("Groups", rid)
            self._count("delete_team")
        except Gone:
            pass
        self._forget("team", tid)
