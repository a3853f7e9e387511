"""Migration 0006: SQLite's `memberships` becomes a WITHOUT ROWID table, with its rows, keys,
cascades and (user_id, team_id) index; downgrading gives the rowid table back, rows kept."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import Engine

from syncd.store.engine import _alembic_config, make_engine, upgrade

ROWS = [
    ("t1", "u1", "d", "pull", "2026-01-01 00:00:00.000000", None),
    ("t1", "u2", "d", "manual", "2026-01-02 00:00:00.000000", "Bob"),
    ("t2", "u1", None, "scim", "2026-01-03 00:00:00.000000", None),
]


def _seed(eng: Engine) -> None:
    with eng.begin() as c:
        c.exec_driver_sql("INSERT INTO directories VALUES ('d', 'graph', '2026-01-01 00:00:00.000000')")
        for u in ("u1", "u2"):
            c.exec_driver_sql(
                "INSERT INTO users (id, directory, user_name, user_name_key, active, data, version, "
                f"created_at, updated_at) VALUES ('{u}', 'd', '{u}', '{u}', 1, '{{}}', 1, "
                "'2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000')"
            )
        for t in ("t1", "t2"):
            c.exec_driver_sql(
                "INSERT INTO teams (id, directory, display_name, display_name_key, data, member_count, "
                f"archived, version, created_at, updated_at) VALUES ('{t}', 'd', '{t}', '{t}', '{{}}', "
                "0, 0, 1, '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000')"
            )
        c.exec_driver_sql("INSERT INTO memberships VALUES (?, ?, ?, ?, ?, ?)", ROWS)  # type: ignore[arg-type]


def _state(eng: Engine) -> tuple[list[tuple[object, ...]], str, list[str]]:
    with eng.connect() as c:
        rows = [tuple(r) for r in c.exec_driver_sql("SELECT * FROM memberships ORDER BY team_id, user_id")]
        sql = c.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'memberships'").scalar()
        idx = [
            r[0]
            for r in c.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE tbl_name = 'memberships' AND type = 'index' "
                "AND sql IS NOT NULL"
            )
        ]
    return rows, sql or "", idx


def test_rows_keys_and_index_survive_both_ways(tmp_path: Path) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 'syncd.db'}")
    try:
        upgrade(eng, "0005")
        _seed(eng)
        upgrade(eng)
        rows, sql, idx = _state(eng)
        assert rows == ROWS and sql.rstrip().endswith("WITHOUT ROWID")
        assert idx == ["CREATE INDEX ix_memberships_user ON memberships (user_id, team_id)"]
        with eng.begin() as c:  # the cascades are still there
            c.exec_driver_sql("DELETE FROM users WHERE id = 'u1'")
        assert [r[:2] for r in _state(eng)[0]] == [("t1", "u2")]
        command.downgrade(_alembic_config(eng), "0005")
        rows, sql, idx = _state(eng)
        assert [r[:2] for r in rows] == [("t1", "u2")] and "WITHOUT ROWID" not in sql
        assert len(idx) == 1
    finally:
        eng.dispose()
