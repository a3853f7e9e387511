"""The schema comes only from migrations, and the migrations match the models."""

from __future__ import annotations

import warnings

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from syncd.store.engine import _alembic_config, schema_status, upgrade


def test_migrated_schema_matches_models(engine) -> None:
    # SQLite cannot reflect the expression indexes (PostgreSQL compares them); all else must match
    with engine.connect() as conn, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata
        )
    assert diff == [], diff


def test_upgrade_is_idempotent_and_reports_head(engine) -> None:
    upgrade(engine)
    current, head = schema_status(engine)
    assert current == head and head


def test_downgrade_to_base_and_back(engine) -> None:
    from alembic import command

    command.downgrade(_alembic_config(engine), "base")
    assert schema_status(engine)[0] is None
    upgrade(engine)
    assert schema_status(engine)[0] == schema_status(engine)[1]
