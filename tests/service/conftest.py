"""Fixtures of the service tests on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from tests.conftest import PG_URL


@pytest.fixture
def plain_role(pg: Engine) -> Iterator[str]:
    """A role that owns nothing and is no superuser, with the rights on the test schema a
    store's role has (it is the cluster's: dropped after the test). `pg`: the test module's
    PostgreSQL store."""
    role = f"syncd_plain_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    with pg.begin() as c:
        schema = c.execute(text("SELECT current_schema()")).scalar_one()
    with admin.begin() as c:
        c.execute(text(f'CREATE ROLE "{role}" NOSUPERUSER'))
        c.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
        c.execute(
            text(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"')
        )
    try:
        yield role
    finally:
        with admin.begin() as c:
            c.execute(text(f'DROP OWNED BY "{role}"'))
            if server_version(admin) >= 150000:
                c.execute(text(f'REVOKE SET ON PARAMETER session_replication_role FROM "{role}"'))
            c.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()


def server_version(engine: Engine) -> int:
    with engine.connect() as c:
        return int(c.execute(text("SHOW server_version_num")).scalar_one())
