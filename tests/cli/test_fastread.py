"""The listings' fast path (cli/quick.py, cli/fastread.py, cli/fastconfig.py) answers exactly
as the full path does, on SQLite and PostgreSQL, and hands anything it cannot answer for
(an out-of-date schema, an unknown directory, an option it does not parse) to the full path."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from cli import fastread, quick
from cli.fastconfig import store_config
from cli.main import main
from syncd.service import views
from syncd.store.engine import session_scope
from tests.cli.conftest import Cli

LISTINGS = [
    ["users", "list"],
    ["users", "list", "--inactive"],
    ["users", "list", "-d", "entra", "--inactive", "--limit", "1"],
    ["users", "list", "--local"],
    ["users", "list", "--directory", "okta", "--all"],
    ["teams", "list"],
    ["teams", "list", "--members"],
    ["teams", "list", "--members", "-n", "2"],
    ["teams", "list", "--local"],
]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    old = sys.argv
    sys.argv = ["syncd", *argv]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    out = capsys.readouterr()
    return code, out.out, out.err


def _full_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastread, "list_users", lambda *a, **k: None)
    monkeypatch.setattr(fastread, "list_teams", lambda *a, **k: None)


@pytest.mark.parametrize("argv", LISTINGS, ids=" ".join)
@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_a_listing_prints_the_same_on_the_fast_and_the_full_path(
    seeded: Engine,
    store_cli: Cli,
    argv: list[str],
    as_json: bool,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    args = ["--config", str(store_cli.config), *argv, *(["--json"] if as_json else [])]
    served = quick.run(args)
    fast_out = capsys.readouterr()
    assert served == 0, "the fast path did not answer"
    _full_path(monkeypatch)
    code, out, err = _run(args, capsys)
    assert code == 0, err
    assert (fast_out.out, fast_out.err) == (out, err)
    if as_json:
        assert json.loads(out)


@pytest.mark.parametrize(
    ("directory", "local", "inactive", "limit"),
    [(None, False, False, 100), (None, False, True, 2), ("entra", False, True, None), (None, True, True, 5)],
)
def test_fastread_users_equal_the_views(
    seeded: Engine, store_cli: Cli, directory: str | None, local: bool, inactive: bool, limit: int | None
) -> None:
    scope = views.LOCAL if local else directory or views.ALL
    with session_scope(seeded, write=False) as s:
        rows = views.list_users(s, directory=scope, include_inactive=inactive, limit=limit)
        total = views.count_users(s, directory=scope, include_inactive=inactive)
    fast = fastread.list_users(
        store_cli.config, directory=directory, local=local, include_inactive=inactive, limit=limit
    )
    assert fast == (rows, total)
    if directory == "entra":
        assert fast[0][0].email == "alice@example.com"  # the primary one of two


def test_fastread_teams_equal_the_views(seeded: Engine, store_cli: Cli) -> None:
    with session_scope(seeded, write=False) as s:
        rows = views.list_teams(s, with_members=True, limit=3)
        total = views.count_teams(s)
    assert fastread.list_teams(store_cli.config, directory=None, local=False, with_members=True, limit=3) == (
        rows,
        total,
    )


def test_an_out_of_date_schema_is_reported_not_listed(
    seeded: Engine, store_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    with seeded.begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num = '0004'"))
    args = ["--config", str(store_cli.config), "users", "list"]
    assert quick.run(args) is None
    code, out, err = _run(args, capsys)
    assert code == 2
    assert "the store schema is at 0004" in err and "syncd db upgrade" in err
    assert out == ""


def test_an_unknown_directory_is_an_error_not_an_empty_listing(
    seeded: Engine, store_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--config", str(store_cli.config), "teams", "list", "-d", "nope"]
    assert quick.run(args) is None
    code, _, err = _run(args, capsys)
    assert code == 2
    assert "unknown directory 'nope'" in err


def test_a_missing_store_is_left_to_the_full_path(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--config", str(cli.config), "users", "list"]
    assert quick.run(args) is None
    code, _, err = _run(args, capsys)
    assert code == 2
    assert "does not exist yet" in err
    assert not (cli.config.parent / "state" / "syncd.db").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["users", "list", "--help"],
        ["users", "list", "--limit=5"],
        ["users", "list", "--limit", "0"],
        ["users", "list", "-d", "entra", "--local"],
        ["users", "--json", "list"],
        ["users", "list", "--members"],
        ["users", "show", "alice"],
        ["users", "list", "extra"],
        ["users", "list", "-d"],
        ["-d", "entra", "users", "list"],
        ["runs"],
    ],
    ids=" ".join,
)
def test_what_the_quick_parser_does_not_know_goes_to_typer(argv: list[str]) -> None:
    assert quick._parse(argv) is None


def test_global_and_command_options_parse_as_typer_does() -> None:
    opts = quick._parse(["--json", "-c", "a.toml", "teams", "list", "--config", "b.toml", "-n", "7", "--all"])
    assert opts is not None
    assert (opts["json"], opts["config"], opts["limit"], opts["every"]) == (True, Path("b.toml"), 7, True)


def test_store_config_follows_the_loader(tmp_path: Path) -> None:
    from syncd.config import load_config

    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "store-url").write_text("sqlite:////srv/x.db\n")
    cases = {
        "": None,
        'state_dir = "st"\n[directories.entra]\nkind = "scim"\n': None,
        '[store]\nurl_env = "STORE_URL"\n': None,
        '[store]\nurl_file = "store-url"\n': None,
    }
    env = {
        "HOME": str(tmp_path),
        "STORE_URL": " postgresql+psycopg://u@h/db ",
        "CREDENTIALS_DIRECTORY": str(creds),
    }
    for body in cases:
        path = tmp_path / "config.toml"
        path.write_text(body)
        quick_conf = store_config(path, env)
        full = load_config(path, environ=env)
        assert quick_conf is not None, body
        assert quick_conf.url == full.store.url, body
        assert quick_conf.directories == frozenset(full.directories), body


@pytest.mark.parametrize(
    "body",
    ['[store]\nurl = "x"\nurl_env = "Y"\n', "[store]\nurl_envv = 'X'\n", "state_dir = 3\n", "[store\n"],
)
def test_a_config_only_the_loader_understands_is_left_to_it(tmp_path: Path, body: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(body)
    assert store_config(path, {"HOME": str(tmp_path)}) is None


def test_an_unreachable_postgresql_store_is_waited_for_once_not_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host that accepts TCP and never answers: the fast path's connection times out, and
    the full path reports that failure (same message as its own) instead of a second wait."""
    import socket
    import threading

    from cli import context

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    port = listener.getsockname()[1]
    config = tmp_path / "config.toml"
    config.write_text(f'[store]\nurl = "postgresql+psycopg://postgres@127.0.0.1:{port}/test"\n')
    monkeypatch.setattr(fastread, "PG_CONNECT_TIMEOUT_S", 1)
    monkeypatch.setattr(context, "PG_CONNECT_TIMEOUT_S", 1)
    monkeypatch.setattr(fastread, "_unreachable", {})
    try:
        code, out, err = _run(["--config", str(config), "users", "list"], capsys)
    finally:
        listener.close()
        for conn in accepted:
            conn.close()
    assert code == 2, err
    assert out == ""
    assert err.startswith("syncd: error: cannot reach the store postgresql+psycopg://postgres@127.0.0.1:")
    assert "and that the database is up" in err
    assert len(accepted) == 1, "the full path connected again after the fast path's timeout"
