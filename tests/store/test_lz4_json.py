"""Migration 0007: on a PostgreSQL server with lz4, new values of the large JSON columns
(audit `before`/`after`, change-feed `data`) are stored lz4-compressed, values stored before
still read back the same; downgrading returns the columns to the server's default."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, text

from syncd.store.engine import _alembic_config, upgrade
from tests.conftest import migrated_store

pytestmark = pytest.mark.postgres

#: a team's member list, as a pull's audit event and feed row hold it: kilobytes, compressible
LARGE = json.dumps({"members": [f"{i:08d}-0000-4000-8000-000000000000" for i in range(200)]})
COLUMNS = {("audit_events", "before"), ("audit_events", "after"), ("changes", "data")}


def _compression(eng: Engine) -> dict[tuple[str, str], str]:
    with eng.connect() as c:
        rows = c.execute(
            text(
                "SELECT c.relname, a.attname, a.attcompression FROM pg_attribute a "
                "JOIN pg_class c ON c.oid = a.attrelid "
                "WHERE c.relnamespace = CAST(current_schema() AS regnamespace) "
                "AND c.relname IN ('audit_events', 'changes') AND a.atttypid = CAST('json' AS regtype)"
            )
        )
        return {(t, col): comp for t, col, comp in rows}


def _insert(eng: Engine, marker: str) -> None:
    with eng.begin() as c:
        c.execute(
            text(
                "INSERT INTO audit_events (at, actor, action, resource_type, resource_id, after) "
                "VALUES (now(), 'test', 'team.members', 'group', :m, CAST(:v AS json))"
            ),
            {"m": marker, "v": LARGE},
        )


def _stored(eng: Engine, marker: str) -> tuple[str, str | None]:
    with eng.connect() as c:
        row = c.execute(
            text("SELECT after::text, pg_column_compression(after) FROM audit_events WHERE resource_id = :m"),
            {"m": marker},
        ).one()
        return row[0], row[1]


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Engine]:
    with migrated_store("postgres", tmp_path) as eng:
        with eng.connect() as c:
            has_lz4 = c.execute(
                text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
            ).scalar()
        if not has_lz4:
            pytest.skip("this PostgreSQL server is built without lz4")
        yield eng


def test_large_json_values_are_stored_with_lz4_and_old_ones_still_read(pg: Engine) -> None:
    assert _compression(pg) == dict.fromkeys(COLUMNS, "l")
    cfg = _alembic_config(pg)
    command.downgrade(cfg, "0006")
    assert _compression(pg) == dict.fromkeys(COLUMNS, "")
    _insert(pg, "before")
    upgrade(pg)
    _insert(pg, "after")
    assert _stored(pg, "after") == (LARGE, "lz4")
    with pg.connect() as c:
        default = c.execute(text("SHOW default_toast_compression")).scalar_one()
    assert _stored(pg, "before") == (LARGE, default)  # the server's default then; still read back
