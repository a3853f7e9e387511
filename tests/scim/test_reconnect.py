"""A SCIM request after the server ended the sessions of the pool's PostgreSQL connections
(restart, `pg_terminate_backend`, an idle timeout) is answered from a fresh connection: the
pool hands out no connection the server has closed (`store.engine`, checked without a round
trip)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, event, text

from connectors.testing.server import ServerThread, free_port
from syncd.scim import create_app
from syncd.service.schema import CORE_USER
from tests.conftest import PG_URL, migrated_store
from tests.scim.conftest import new_token

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Engine]:
    with migrated_store("postgres", tmp_path) as eng:
        yield eng


def _terminate(pids: list[int]) -> None:
    admin = create_engine(PG_URL)
    try:
        with admin.connect() as c:
            for pid in pids:  # waits (up to 5 s) until each backend is gone
                assert c.execute(text("SELECT pg_terminate_backend(:p, 5000)"), {"p": pid}).scalar()
    finally:
        admin.dispose()


def test_requests_after_the_servers_sessions_ended_succeed(pg: Engine) -> None:
    secret = new_token(pg, "entra")
    used: set[int] = set()  # the backends of the connections the requests were served on

    def checked_out(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        used.add(dbapi_conn.info.backend_pid)

    event.listen(pg, "checkout", checked_out)
    port = free_port()
    srv = ServerThread(create_app(pg, public_url=f"http://127.0.0.1:{port}"), port=port).start()
    try:
        with httpx.Client(
            base_url=srv.url + "/scim/v2", headers={"Authorization": f"Bearer {secret}"}
        ) as http:
            for i in range(3):
                name = f"u{i}@example.com"
                assert http.get("/Users", params={"filter": f'userName eq "{name}"'}).status_code == 200
                assert used
                _terminate(sorted(used))
                used.clear()
                created = http.post("/Users", json={"schemas": [CORE_USER], "userName": name})
                assert created.status_code == 201, created.text
                _terminate(sorted(used))
                used.clear()
                found = http.get("/Users", params={"filter": f'userName eq "{name}"'})
                assert found.status_code == 200 and found.json()["totalResults"] == 1
    finally:
        srv.stop()


def test_a_connection_whose_descriptor_is_above_1024_is_handed_out(pg: Engine) -> None:
    import os
    import resource

    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        pytest.skip(f"the open-files limit ({soft}) keeps descriptors below 1200")
    pg.dispose()  # the next connection opens now, above the descriptors held below
    held = []
    try:
        while not held or held[-1] < 1100:
            held.append(os.open(os.devnull, os.O_RDONLY))
        for _ in range(2):  # a fresh connection, then the pooled one checked at checkout
            with pg.connect() as conn:
                assert conn.connection.dbapi_connection.fileno() > 1024
                assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        for fd in held:
            os.close(fd)
