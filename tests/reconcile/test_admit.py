"""Hostile IdP names on the pull path: cleaned or held with a note, never a failed run, on
SQLite and PostgreSQL (`syncd.reconcile.clean`)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from connectors.base import Connector
from syncd.reconcile.clean import admit, clean_text
from syncd.reconcile.run import RunOptions, RunResult, run_sync
from syncd.reconcile.snapshot import Snapshot, SnapshotGroup, SnapshotUser, UserGroups
from syncd.reconcile.view import StoredTeam, StoredUser, StoreView
from syncd.service import users
from syncd.service.context import Actor
from syncd.service.limits import NAME_MAX
from syncd.store import session_scope
from syncd.store.models import Team, User


class Fixed(Connector):
    """A connector answering the snapshot it is given."""

    kind = "graph"

    def __init__(self, directory: str, snap: Snapshot) -> None:
        super().__init__(directory)
        self.snap = snap

    async def snapshot(self, *, cursor: str | None = None, progress: Any = None) -> Snapshot:
        return self.snap

    async def user_groups(self, user: str) -> UserGroups:
        return UserGroups(self.directory, None)


def test_clean_text_table() -> None:
    for raw, want in [
        ("plain", "plain"),
        ("a\x00b", "ab"),
        ("tab\there", "tab here"),
        ("two\r\nlines", "two  lines"),
        ("\x1b[31mred\x1b[0m", "[31mred[0m"),
        ("nel\x85c1\x9b", "nel c1"),
        ("half \ud800", "half \ufffd"),
        ("ünïcødé ß", "ünïcødé ß"),
    ]:
        assert clean_text(raw) == want, raw


def test_admit_holds_stored_objects_and_skips_new_ones_with_notes() -> None:
    snap = Snapshot(
        "d",
        users={
            "ok": SnapshotUser("ok", "ok@x", display_name="A\x00da"),
            "new-long": SnapshotUser("new-long", "n" * (NAME_MAX + 1)),
            "kept": SnapshotUser("kept", "ß" * 300, active=False),
            "blank": SnapshotUser("blank", "\t\n"),
            "bad\x00id": SnapshotUser("bad\x00id", "id@x"),
        },
        groups={
            "g1": SnapshotGroup("g1", "Eng\x1b", frozenset({"ok"})),
            "g2": SnapshotGroup("g2", "x" * NAME_MAX),
            "g3": SnapshotGroup("g3", "y" * NAME_MAX),
        },
    )
    view = StoreView(
        users={"kept": StoredUser("id-k", "kept", "kept@x", True, "Kept")},
        teams={"g3": StoredTeam("id-g3", "g3", "Stored name")},
    )
    out, notes = admit(snap, view)
    assert out.users["ok"].display_name == "Ada"
    assert out.users["kept"] == SnapshotUser("kept", "kept@x", False, None, "Kept")
    assert set(out.users) == {"ok", "kept"}
    assert out.groups["g1"].display_name == "Eng" and out.groups["g1"].member_ids == {"ok"}
    assert out.groups["g3"].display_name == "Stored name"
    assert "g2" not in out.groups
    assert len(notes) == 6 and all(" characters" in n or "blank" in n or "U+0000" in n for n in notes)
    assert any(n.startswith("user 'kept' keeps its stored attributes: userName is 600") for n in notes)
    assert any(n.startswith("group 'g2' not created") for n in notes)


def _sync(engine: Engine, directory: str, snap: Snapshot, tmp_path: Path) -> RunResult:
    return run_sync(engine, Fixed(directory, snap), RunOptions(lock_dir=tmp_path))


def test_a_pull_with_hostile_names_applies_everything_else_and_converges(
    engine: Engine, tmp_path: Path
) -> None:
    d = f"clean-{uuid.uuid4().hex[:8]}"
    snap = Snapshot(
        d,
        users={
            "u1": SnapshotUser("u1", "ada@x", display_name="Ada\x00 \x1b[1mL", given_name="A\tda"),
            "u2": SnapshotUser("u2", "b" * 1_500_000),
            "u3": SnapshotUser("u3", "carl@x"),
        },
        groups={"g1": SnapshotGroup("g1", "Eng\x00ineering", frozenset({"u1", "u2", "u3"}))},
    )
    first = _sync(engine, d, snap, tmp_path)
    assert first.outcome == "applied", first.error
    assert any("'u2' not created: userName is 1500000 characters long" in n for n in first.plan.notes)
    with session_scope(engine, write=False) as s:
        rows = {u.external_id: u for u in s.execute(select(User).where(User.directory == d)).scalars()}
        team = s.execute(select(Team).where(Team.directory == d)).scalars().one()
        actor = Actor("scim", d, "t")
        assert users.list_users(s, actor=actor, filter='displayName sw "ada"').total == 1
    assert set(rows) == {"u1", "u3"}
    assert (rows["u1"].display_name, rows["u1"].given_name) == ("Ada [1mL", "A da")
    assert (team.display_name, team.member_count) == ("Engineering", 2)
    again = _sync(engine, d, snap, tmp_path)  # deterministic cleaning: nothing to change
    assert again.outcome == "applied" and again.plan.counts() == {}, again.plan.counts()

    renamed = Snapshot(d, users={**snap.users, "u3": SnapshotUser("u3", "\x00\x00")}, groups=snap.groups)
    third = _sync(engine, d, renamed, tmp_path)
    assert third.outcome == "applied" and third.plan.counts() == {}, third.plan.counts()
    assert any("'u3' keeps its stored attributes: userName is required" in n for n in third.plan.notes)
    with session_scope(engine, write=False) as s:
        u3 = s.execute(select(User).where(User.directory == d, User.external_id == "u3")).scalars().one()
    assert (u3.user_name, u3.active) == ("carl@x", True)
