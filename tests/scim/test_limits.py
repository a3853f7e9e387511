"""Body limit (413) and the 500 funnel, on a server of their own (store: SQLite)."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine

from connectors.testing.server import ServerThread, serve
from syncd.scim import MAX_BODY_BYTES, create_app
from syncd.store.engine import make_engine, upgrade
from tests.scim.conftest import new_token
from tests.scim.helpers import assert_error

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path_factory.mktemp('limits') / 'syncd.db'}")
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def small(small_store: Engine) -> Iterator[tuple[ServerThread, str]]:
    app = create_app(small_store, public_url="http://scim.test", max_body_bytes=LIMIT)

    @app.get("/scim/v2/boom")
    def boom() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    with serve(app) as srv:
        yield srv, new_token(small_store, "limits")


def _client(small: tuple[ServerThread, str]) -> httpx.Client:
    srv, secret = small
    return httpx.Client(base_url=f"{srv.url}/scim/v2", headers={"Authorization": f"Bearer {secret}"})


def test_default_limit_is_ten_mebibytes() -> None:
    assert MAX_BODY_BYTES == 10 * 1024 * 1024


def test_a_body_over_the_limit_is_413(small: tuple[ServerThread, str]) -> None:
    big = b'{"userName": "' + b"x" * (LIMIT + 10) + b'"}'
    with _client(small) as c:
        assert_error(c.post("/Users", content=big, headers={"Content-Type": "application/json"}), 413)


def test_a_chunked_body_over_the_limit_is_413(small: tuple[ServerThread, str]) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"userName": "'
        for _ in range(LIMIT // 4096 + 2):
            yield b"x" * 4096
        yield b'"}'

    with _client(small) as c:
        assert_error(c.post("/Users", content=chunks(), headers={"Content-Type": "application/json"}), 413)


def test_a_body_under_the_limit_passes(small: tuple[ServerThread, str]) -> None:
    with _client(small) as c:
        emails = [{"value": f"{i}-{'e' * 400}@example.com"} for i in range(LIMIT // 2 // 450)]  # ~LIMIT/2
        resp = c.post("/Users", json={"userName": "fits@example.com", "emails": emails})
        assert resp.status_code == 201, resp.text


def test_a_bug_is_500_without_internals(
    small: tuple[ServerThread, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.CRITICAL), _client(small) as c:
        body = assert_error(c.get("/boom"), 500)
    assert body["detail"] == "internal error"


def test_a_client_leaving_mid_body_is_logged_at_info_without_a_traceback(
    small: tuple[ServerThread, str], caplog: pytest.LogCaptureFixture
) -> None:
    srv, secret = small
    host, port = srv.url.removeprefix("http://").split(":")
    head = (
        f"POST /scim/v2/Users HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {secret}\r\n"
        "Content-Type: application/scim+json\r\nContent-Length: 1000\r\n\r\n"
    )
    with caplog.at_level(logging.INFO):
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(head.encode() + b'{"userName": "half')
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(
            "disconnected" in r.getMessage() for r in caplog.records
        ):
            time.sleep(0.05)
    seen = [
        (r.name, r.levelno, r.getMessage()) for r in caplog.records if r.name.startswith(("syncd", "uvicorn"))
    ]
    assert any(level == logging.INFO and "client disconnected" in msg for _, level, msg in seen), seen
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING], seen
