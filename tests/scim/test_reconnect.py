"""A SCIM request after the server ended the sessions of the pools' PostgreSQL connections
(restart, `pg_terminate_backend`, an idle timeout) is answered from a fresh connection: no pool
hands out a connection the server has closed (`store.engine.closed_by_server`, checked without
a round trip), neither the threadpool's nor the event loop's (`store.aio`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.pool import Pool

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
    """End the sessions of `pids` that are still there (a pid seen at a checkout the pool then
    refused as closed is gone already); at least one must be."""
    admin = create_engine(PG_URL)
    try:
        with admin.connect() as c:
            ended = c.execute(  # waits (up to 5 s) until each backend is gone
                text("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE pid = ANY(:p)"),
                {"p": pids},
            ).scalars().all()
        assert ended and all(ended)
    finally:
        admin.dispose()


def test_requests_after_the_servers_sessions_ended_succeed(pg: Engine) -> None:
    secret = new_token(pg, "entra")
    used: set[int] = set()  # the backends of the connections the requests were served on
    drivers: set[str] = set()  # the driver connections' classes: which pools served them

    def checked_out(_dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        used.add(record.driver_connection.info.backend_pid)
        drivers.add(type(record.driver_connection).__name__)

    event.listen(Pool, "checkout", checked_out)  # every pool: the app's two are made inside it
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
                listed = http.get("/Users")  # not a key filter: the threadpool's pool
                assert listed.status_code == 200 and listed.json()["totalResults"] == i + 1
                _terminate(sorted(used))
                used.clear()
    finally:
        srv.stop()
        event.remove(Pool, "checkout", checked_out)
    assert drivers == {"Connection", "AsyncConnection"}


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
