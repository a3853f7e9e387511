"""Shared fixtures: a migrated store on every backend (SQLite file and PostgreSQL).

PostgreSQL runs at 127.0.0.1:5432 (user postgres, database test) on the project's machines;
each test gets its own schema there. When the server cannot be reached the PostgreSQL
parameters are skipped locally, but fail under CI=true: they are part of the suite.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from syncd.store.engine import make_engine, upgrade

PG_URL = os.environ.get("SYNCD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
_pg_ok: bool | None = None


def pg_available() -> bool:
    global _pg_ok
    if _pg_ok is None:
        try:
            eng = create_engine(PG_URL, connect_args={"connect_timeout": 3})
            with eng.connect() as c:
                c.execute(text("select 1"))
            eng.dispose()
            _pg_ok = True
        except Exception:
            _pg_ok = False
    return _pg_ok


def require_pg() -> None:
    if not pg_available():
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is not reachable at {PG_URL}, and CI needs it")
        pytest.skip("PostgreSQL not reachable")


def pg_schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


def make_pg_engine_with_schema() -> tuple[Engine, str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    return make_engine(pg_schema_url(schema)), schema


def drop_pg_schema(schema: str) -> None:
    admin = create_engine(PG_URL)
    with admin.begin() as c:
        c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@contextmanager
def migrated_store(backend: str, sqlite_dir: Path) -> Iterator[Engine]:
    """A migrated, empty store: a SQLite file in `sqlite_dir`, or a fresh PostgreSQL schema."""
    if backend == "sqlite":
        eng = make_engine(f"sqlite:///{sqlite_dir / 'syncd.db'}")
        upgrade(eng)
        try:
            yield eng
        finally:
            eng.dispose()
        return
    require_pg()
    eng, schema = make_pg_engine_with_schema()
    try:
        upgrade(eng)
        yield eng
    finally:
        eng.dispose()
        drop_pg_schema(schema)


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty store on each backend."""
    with migrated_store(request.param, tmp_path) as eng:
        yield eng
