"""Migration 0008: each per-directory unique index leads with its own key, so that a lookup by
one key is planned on that key's index, even on a new table PostgreSQL has not analysed yet
(where, with both indexes led by the directory, it chose the other key's index and read the
whole directory per lookup)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from syncd.service.keyed import _select
from syncd.store.engine import _alembic_config, upgrade
from syncd.store.models import Team, User
from tests.conftest import BACKENDS, migrated_store

#: index → (table, key column)
INDEXES = {
    "ux_users_user_name": ("users", "user_name_key"),
    "ux_users_external_id": ("users", "external_id"),
    "ux_teams_display_name": ("teams", "display_name_key"),
    "ux_teams_external_id": ("teams", "external_id"),
}
MODELS = {"users": User, "teams": Team}


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with migrated_store(request.param, tmp_path) as eng:
        yield eng


def _columns(eng: Engine, index: str) -> list[str]:
    """The index's key expressions in order, lower-cased, without casts or spaces."""
    with eng.connect() as c:
        if eng.dialect.name == "postgresql":
            sql = c.execute(
                text(
                    "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname = :i"
                ),
                {"i": index},
            ).scalar_one()
        else:
            sql = c.execute(text("SELECT sql FROM sqlite_master WHERE name = :i"), {"i": index}).scalar_one()
    inner = sql[sql.index("(") + 1 : sql.rindex(")")]
    inner = re.sub(r"::[a-z ]+", "", inner.lower()).replace(" ", "")
    return re.split(r",(?![^()]*\))", inner)


def test_each_unique_index_leads_with_its_key(store: Engine) -> None:
    for index, (_table, key) in INDEXES.items():
        assert _columns(store, index) == [key, "coalesce(directory,'')"], index


def test_uniqueness_is_per_directory_as_before(store: Engine) -> None:
    insert = text(
        "INSERT INTO users (id, directory, external_id, user_name, user_name_key, active, data, version, "
        "created_at, updated_at) VALUES (:id, :d, :x, :n, :n, true, '{}', 1, "
        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    )
    with store.begin() as c:
        for name in ("a", "b"):
            add = "INSERT INTO directories (name, kind, created_at) VALUES (:n, 'scim', CURRENT_TIMESTAMP)"
            c.execute(text(add), {"n": name})
        c.execute(insert, {"id": "1", "d": "a", "x": "x1", "n": "bob"})
        c.execute(insert, {"id": "2", "d": "b", "x": "x1", "n": "bob"})  # the same keys elsewhere
        c.execute(insert, {"id": "3", "d": None, "x": "x1", "n": "bob"})  # and among local users
    clashes = (
        {"id": "4", "d": "a", "x": "x2", "n": "bob"},  # userName
        {"id": "5", "d": None, "x": "x9", "n": "bob"},
        {"id": "6", "d": "b", "x": "x1", "n": "eve"},  # externalId
        {"id": "7", "d": None, "x": "x1", "n": "eve"},
    )
    for clash in clashes:
        with pytest.raises(IntegrityError), store.begin() as c:
            c.execute(insert, clash)


@pytest.mark.postgres
@pytest.mark.parametrize("index", sorted(INDEXES))
def test_a_lookup_by_key_is_planned_on_its_index_in_a_new_store(tmp_path: Path, index: str) -> None:
    """The generic plan a pooled connection keeps for the lookup (the statement `keyed` sends),
    on a new, empty, never analysed table: both conditions are that index's conditions."""
    table, key = INDEXES[index]
    compiled = _select(MODELS[table].__table__, key).compile(dialect=postgresql.psycopg.dialect())  # type: ignore[attr-defined]
    sql = str(compiled).replace("%(scope)s", "$1").replace("%(value)s", "$2")
    with migrated_store("postgres", tmp_path) as eng, eng.connect() as c:
        c.execute(text("SET plan_cache_mode = force_generic_plan"))
        c.exec_driver_sql(f"PREPARE lookup(varchar, varchar) AS {sql}")
        plan = "\n".join(r[0] for r in c.exec_driver_sql("EXPLAIN EXECUTE lookup('d', 'v')"))
    assert f"Index Scan using {index} on {table}" in plan, plan
    assert "Filter" not in plan, plan
    assert key in plan and "COALESCE(directory" in plan, plan


@pytest.mark.parametrize("backend", BACKENDS)
def test_downgrade_restores_directory_first_and_upgrade_key_first(tmp_path: Path, backend: str) -> None:
    with migrated_store(backend, tmp_path) as eng:
        command.downgrade(_alembic_config(eng), "0007")
        assert _columns(eng, "ux_users_user_name") == ["coalesce(directory,'')", "user_name_key"]
        upgrade(eng)
        assert _columns(eng, "ux_users_user_name") == ["user_name_key", "coalesce(directory,'')"]
