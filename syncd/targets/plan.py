"""The typed changes of one delivery: what `diff` decides and `apply` sends.

Users are named by local id; members to add by local user id (a user created in the same plan
has no remote id yet); members to remove by remote user id (only users syncd manages).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from syncd.targets.desired import DesiredTeam, DesiredUser


@dataclass
class TargetPlan:
    adopt: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, local id, remote id)
    create_users: list[DesiredUser] = field(default_factory=list)
    update_users: list[tuple[DesiredUser, str]] = field(default_factory=list)  # PUT
    activate_users: list[tuple[str, str]] = field(default_factory=list)  # (local, remote): active=true
    leave_users: list[tuple[str, str]] = field(default_factory=list)  # on_user_left
    create_teams: list[DesiredTeam] = field(default_factory=list)
    rename_teams: list[tuple[DesiredTeam, str]] = field(default_factory=list)
    add_members: dict[str, list[str]] = field(default_factory=dict)  # team local id -> user local ids
    remove_members: dict[str, list[str]] = field(default_factory=dict)  # team local id -> remote ids
    delete_teams: list[tuple[str, str]] = field(default_factory=list)  # on_team_left = delete
    forget: list[tuple[str, str]] = field(default_factory=list)  # (kind, local id): map rows to drop
    notes: list[str] = field(default_factory=list)
    complete: bool = True

    def counts(self) -> dict[str, int]:
        c = {
            "adopt": len(self.adopt),
            "create_user": len(self.create_users),
            "update_user": len(self.update_users),
            "activate_user": len(self.activate_users),
            "leave_user": len(self.leave_users),
            "create_team": len(self.create_teams),
            "rename_team": len(self.rename_teams),
            "add_members": sum(len(v) for v in self.add_members.values()),
            "remove_members": sum(len(v) for v in self.remove_members.values()),
            "delete_team": len(self.delete_teams),
        }
        return {k: v for k, v in c.items() if v}

    def removals(self) -> dict[str, int]:
        return {
            "leave_user": len(self.leave_users),
            "delete_team": len(self.delete_teams),
            "remove_members": sum(len(v) for v in self.remove_members.values()),
        }

    def without_removals(self) -> TargetPlan:
        from dataclasses import replace

        return replace(
            self, leave_users=[], delete_teams=[], remove_members={}, forget=[], notes=list(self.notes)
        )

    def is_empty(self) -> bool:
        return not self.counts() and not self.forget

    def items(self, names: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """One entry per planned object (for --dry-run and --json)."""
        out: list[dict[str, Any]] = []
        for u in self.create_users:
            out.append({"change": "create_user", "name": u.user_name})
        for u, rid in self.update_users:
            out.append({"change": "update_user", "name": u.user_name, "remote_id": rid})
        for lid, rid in self.activate_users:
            out.append({"change": "activate_user", "local_id": lid, "remote_id": rid})
        for lid, rid in self.leave_users:
            out.append({"change": "leave_user", "local_id": lid, "remote_id": rid})
        for t in self.create_teams:
            out.append({"change": "create_team", "name": t.display_name, "members": len(t.members)})
        for t, rid in self.rename_teams:
            out.append({"change": "rename_team", "name": t.display_name, "remote_id": rid})
        for tid, us in self.add_members.items():
            out.append({"change": "add_members", "team": (names or {}).get(tid, tid), "count": len(us)})
        for tid, rs in self.remove_members.items():
            out.append({"change": "remove_members", "team": (names or {}).get(tid, tid), "count": len(rs)})
        for lid, rid in self.delete_teams:
            out.append({"change": "delete_team", "local_id": lid, "remote_id": rid})
        for kind, lid, rid in self.adopt:
            out.append({"change": f"adopt_{kind}", "local_id": lid, "remote_id": rid})
        return out
