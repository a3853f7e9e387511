"""A member add to a 100,000-member team reads only the rows it names.

Proved by the SQL sent, not by timing: adding one member to a team of 100,000 sends exactly
the same statements as adding one to a team of 100, and no statement reads the memberships
table except by (team, user ids named in the request).
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event, insert

from syncd.service import teams
from syncd.store import session_scope
from syncd.store.models import Membership, Team, User, utcnow
from tests.service.helpers import ENTRA, setup_dirs

BIG = 100_000


def bulk_team(engine, team_id: str, size: int, prefix: str) -> None:
    now = utcnow()
    users = [
        {
            "id": f"{prefix}-{i}",
            "directory": "entra",
            "user_name": f"{prefix}{i}@x",
            "user_name_key": f"{prefix}{i}@x",
            "active": True,
            "data": {"userName": f"{prefix}{i}@x"},
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        for i in range(size + 1)
    ]
    with engine.begin() as c:
        c.execute(
            insert(Team),
            [
                {
                    "id": team_id,
                    "directory": "entra",
                    "display_name": team_id,
                    "display_name_key": team_id,
                    "data": {"displayName": team_id},
                    "member_count": size,
                    "archived": False,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
            ],
        )
        for i in range(0, len(users), 20_000):
            c.execute(insert(User), users[i : i + 20_000])
        rows = [
            {
                "team_id": team_id,
                "user_id": f"{prefix}-{i}",
                "directory": "entra",
                "source": "scim",
                "created_at": now,
            }
            for i in range(size)
        ]
        for i in range(0, len(rows), 20_000):
            c.execute(insert(Membership), rows[i : i + 20_000])


def statements_for_add(engine, team_id: str, user_id: str) -> list[str]:
    seen: list[str] = []

    def hook(conn, cursor, statement, params, context, executemany):
        seen.append(re.sub(r"\s+", " ", statement))

    event.listen(engine, "before_cursor_execute", hook)
    try:
        with session_scope(engine) as s:
            teams.patch_team(
                s,
                actor=ENTRA,
                team_id=team_id,
                operations=[{"op": "add", "path": "members", "value": [{"value": user_id}]}],
            )
    finally:
        event.remove(engine, "before_cursor_execute", hook)
    return seen


@pytest.mark.timeout(600)
def test_member_add_cost_does_not_depend_on_team_size(engine) -> None:
    setup_dirs(engine)
    bulk_team(engine, "small", 100, "s")
    bulk_team(engine, "big", BIG, "b")
    small = statements_for_add(engine, "small", "s-100")
    big = statements_for_add(engine, "big", f"b-{BIG}")
    assert small == big  # same SQL, whatever the team size
    for sql in big:
        if "memberships" in sql.lower() and sql.lstrip().upper().startswith("SELECT"):
            assert "user_id IN" in sql, sql
    with session_scope(engine, write=False) as s:
        t = teams.get_team(s, actor=ENTRA, team_id="big")
    assert t.member_count == BIG + 1 and t.version == 2
