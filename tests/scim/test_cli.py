"""`syncd token create|list|revoke` and a `syncd serve` smoke test (a real subprocess)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select

from connectors.testing.server import free_port
from syncd.service import tokens
from syncd.store import session_scope
from syncd.store.engine import make_engine, upgrade
from syncd.store.models import AuditEvent, Change
from tests.cli.conftest import ROOT, Cli, write_config
from tests.conftest import drop_pg_schema, make_pg_engine_with_schema, pg_schema_url, require_pg


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """A config with a migrated SQLite store and a public URL."""
    db = tmp_path / "syncd.db"
    extra = '[server]\npublic_url = "https://syncd.example.com/"\n' + "".join(
        f'[directories.{name}]\nkind = "scim"\n' for name in ("entra-contoso", "okta-main", "d1", "ok")
    )
    cfg = write_config(tmp_path / "config.toml", url=f"sqlite:///{db}", extra=extra)
    eng = make_engine(f"sqlite:///{db}")
    upgrade(eng)
    eng.dispose()
    return Cli(cfg)


def _engine(cli: Cli):
    return make_engine(f"sqlite:///{cli.config.parent / 'syncd.db'}")


def test_token_create_json_prints_the_tenant_url_and_a_working_token(cli: Cli) -> None:
    out = cli.json(
        "token", "create", "--directory", "entra-contoso", "--name", "entra prod", "--expires", "90d"
    )
    assert out["tenant_url"] == "https://syncd.example.com/scim/v2"
    assert out["token"].startswith("syncd_")
    assert out["directory"] == "entra-contoso" and out["name"] == "entra prod"
    expires = datetime.fromisoformat(out["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=90))) < timedelta(minutes=5)
    eng = _engine(cli)
    with session_scope(eng) as s:
        row = tokens.authenticate(s, out["token"])
        assert row is not None and row.directory == "entra-contoso"
    eng.dispose()


def test_token_create_text_shows_the_token_once_and_list_never(cli: Cli) -> None:
    result = cli("token", "create", "--directory", "okta-main")
    assert result.exit_code == 0, result.output
    secret = next(line.split()[-1] for line in result.stdout.splitlines() if line.startswith("Secret token"))
    assert "Tenant URL:    https://syncd.example.com/scim/v2" in result.stdout
    listed = cli("token", "list")
    assert listed.exit_code == 0 and secret not in listed.output
    rows = cli.json("token", "list", "--directory", "okta-main")
    assert [r["status"] for r in rows] == ["active"]
    assert secret not in json.dumps(rows) and "token_hash" not in rows[0]


def test_token_revoke_by_id_and_by_prefix(cli: Cli) -> None:
    first = cli.json("token", "create", "--directory", "d1")
    second = cli.json("token", "create", "--directory", "d1")
    assert cli("token", "revoke", first["id"]).exit_code == 0
    prefix = second["token"][: len("syncd_") + 6]
    assert cli.json("token", "revoke", prefix)["status"] == "revoked"
    eng = _engine(cli)
    with session_scope(eng) as s:
        assert tokens.authenticate(s, first["token"]) is None
        assert tokens.authenticate(s, second["token"]) is None
    eng.dispose()
    assert [r["status"] for r in cli.json("token", "list")] == ["revoked", "revoked"]
    missing = cli("token", "revoke", "nope")
    assert missing.exit_code == 2 and "no token" in missing.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("--directory", "Bad Name"),
        ("--directory", "ok", "--expires", "soon"),
        ("--directory", "ok", "--expires", "0s"),
    ],
)
def test_token_create_refuses_bad_options(cli: Cli, args: tuple[str, ...]) -> None:
    result = cli("token", "create", *args)
    assert result.exit_code == 2
    assert cli.json("token", "list") == []


def test_serve_answers_and_stops_on_sigterm(cli: Cli) -> None:
    port = free_port()
    env = {**os.environ, "SYNCD_CONFIG": str(cli.config)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--listen", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}/scim/v2/ServiceProviderConfig"
        deadline = time.monotonic() + 20
        while True:
            try:
                resp = httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()[1].decode()
                assert time.monotonic() < deadline, "syncd serve did not start"
                time.sleep(0.1)
        assert resp.status_code == 200
        assert resp.json()["patch"]["supported"] is True
        assert resp.headers["content-type"] == "application/scim+json"
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_refuses_several_workers_on_an_in_memory_sqlite_store(cli: Cli) -> None:
    cli.config.write_text(cli.config.read_text().replace("[server]\n", "[server]\nworkers = 2\n", 1))
    cli.config.write_text(
        re.sub(r'url = "sqlite:///[^"]*"', 'url = "sqlite:///:memory:"', cli.config.read_text())
    )
    result = cli("serve", "--listen", f"127.0.0.1:{free_port()}")
    assert result.exit_code == 2
    assert "an in-memory SQLite database belongs to one process" in result.stderr


def test_serve_listen_socket_sends_without_nagle_delay() -> None:
    from cli.serve import listen_socket

    with listen_socket(f"127.0.0.1:{free_port()}") as sock:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert sock.proto == socket.IPPROTO_TCP  # asyncio sets TCP_NODELAY on accepted sockets


def _serve_with_two_workers(tmp_path: Path, url: str, secret: str, engine: Engine) -> None:
    """`syncd serve` with 2 workers over `url`: concurrent creates (over fresh connections, so
    both workers answer) all succeed, each with its audit and change-feed row; SIGTERM ends it."""
    port = free_port()
    cfg = write_config(
        tmp_path / "config.toml", url=url, extra=f'[server]\nlisten = "127.0.0.1:{port}"\nworkers = 2\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--config", str(cfg)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}/scim/v2"
        headers = {"Authorization": f"Bearer {secret}"}
        deadline = time.monotonic() + 180  # two interpreters starting on a busy machine
        while True:
            try:
                httpx.get(f"{base}/ServiceProviderConfig", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()[1].decode()
                if time.monotonic() > deadline:
                    proc.kill()
                    pytest.fail(f"syncd serve did not start: {proc.communicate()[1].decode()[-2000:]}")
                time.sleep(0.2)
        names = [f"w{i}@example.com" for i in range(12)]

        def create(name: str) -> int:
            body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name}
            with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
                return c.post("/Users", json=body, headers={"Connection": "close"}).status_code

        with ThreadPoolExecutor(6) as pool:
            assert list(pool.map(create, names)) == [201] * len(names)
        with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
            found = c.get("/Users", params={"filter": 'userName sw "w"'}).json()
        assert sorted(r["userName"] for r in found["Resources"]) == sorted(names)
        with session_scope(engine, write=False) as s:
            created = s.execute(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "user.create")
            ).scalar_one()
            changes = s.execute(select(func.count()).select_from(Change)).scalar_one()
        assert (created, changes) == (len(names), len(names))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert b"2 workers" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_with_workers_on_sqlite_takes_concurrent_writes_from_both(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'syncd.db'}"
    eng = make_engine(url)
    try:
        upgrade(eng)
        with session_scope(eng) as s:
            _, secret = tokens.create_token(s, directory="entra", name="workers")
        _serve_with_two_workers(tmp_path, url, secret, eng)
    finally:
        eng.dispose()


@pytest.mark.postgres
def test_serve_with_workers_on_postgresql_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    require_pg()
    eng, schema = make_pg_engine_with_schema()
    try:
        upgrade(eng)
        with session_scope(eng) as s:
            _, secret = tokens.create_token(s, directory="entra", name="workers")
        _serve_with_two_workers(tmp_path, pg_schema_url(schema), secret, eng)
    finally:
        eng.dispose()
        drop_pg_schema(schema)
