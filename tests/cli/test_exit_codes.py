"""Exit codes as cli/exitcodes.py documents them: one test per command that used to get it wrong."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from connectors.testing.google_wire import service_account_info
from connectors.testing.server import free_port
from syncd.store.engine import make_engine
from tests.cli.conftest import ROOT, Cli, write_config
from tests.cli.test_errors import assert_one_line_error


def _store(cli: Cli) -> Cli:
    assert cli("db", "upgrade").exit_code == 0
    return cli


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_help_documents_every_exit_code(cli: Cli) -> None:
    out = " ".join(cli("--help").stdout.split())
    for phrase in (
        "0 success",
        "1 unexpected failure",
        "2 bad usage",
        "3 safety stop",
        "4 IdP or target unreachable",
        "5 partial",
    ):
        assert phrase in out


def test_plan_against_an_unreachable_idp_exits_4(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    sa = tmp_path / "sa.json"
    sa.write_text(json.dumps(service_account_info(f"http://127.0.0.1:{port}/token")))
    extra = (
        f'[directories.gw]\nkind = "google"\nservice_account_file = "{sa}"\nsubject = "admin@x.example"\n'
        f'base_url = "http://127.0.0.1:{port}"\ntoken_url = "http://127.0.0.1:{port}/token"\n'
    )
    cli = _store(Cli(write_config(tmp_path / "config.toml", extra=extra)))
    result = cli("plan", "--directory", "gw")
    assert result.exit_code == 4, result.output
    assert "UnavailableError" in result.stdout
    assert json.loads(cli("plan", "--json").stdout)[0]["outcome"] == "failed"


def test_db_status_exits_2_with_the_fix_when_the_schema_is_out_of_date(cli: Cli, tmp_path: Path) -> None:
    _store(cli)
    engine: Engine = make_engine(f"sqlite:///{tmp_path / 'state' / 'syncd.db'}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    engine.dispose()
    result = cli("db", "status")
    assert result.exit_code == 2, result.output
    assert "0000" in result.stdout  # the table is still shown
    assert result.stderr.startswith("syncd: error: the store schema is at 0000")
    assert "run `syncd db upgrade`" in result.stderr


@pytest.mark.parametrize("command", [["users", "list"], ["teams", "list"], ["audit"]])
def test_listing_an_unknown_directory_exits_2(cli: Cli, command: list[str]) -> None:
    result = _store(cli)(*command, "--directory", "nope")
    assert_one_line_error(result, "unknown directory 'nope'", "known directories: none")


def test_a_directory_known_only_to_the_store_or_only_to_the_config_lists(
    store_cli: Cli, seeded: Engine, tmp_path: Path
) -> None:
    assert store_cli("users", "list", "--directory", "entra").exit_code == 0  # in the store only
    configured = Cli(
        write_config(
            tmp_path / "c2.toml",
            url=seeded.url.render_as_string(hide_password=False),
            extra='[directories.new-push]\nkind = "scim"\n',
        )
    )
    assert configured("users", "list", "--directory", "new-push").exit_code == 0  # in the config only
    result = configured("users", "list", "--directory", "nope")
    assert_one_line_error(result, "known directories: entra, new-push, okta")


def test_token_create_for_an_unknown_directory_exits_2_and_creates_nothing(tmp_path: Path) -> None:
    cli = _store(Cli(write_config(tmp_path / "config.toml", extra='[directories.push]\nkind = "scim"\n')))
    result = cli("token", "create", "--directory", "nope")
    assert_one_line_error(result, "no directory named 'nope'", "[directories.nope]", "configured: push")
    assert cli.json("token", "list") == []


def test_a_token_for_a_pull_directory_is_made_with_a_warning(tmp_path: Path) -> None:
    extra = '[directories.push]\nkind = "scim"\n[directories.okta]\nkind = "okta"\norg_url = "https://x.okta.com"\n'
    extra += 'token = "t"\n'
    cli = _store(Cli(write_config(tmp_path / "config.toml", extra=extra)))
    pull = cli("token", "create", "--directory", "okta")
    assert pull.exit_code == 0, pull.output
    assert "syncd: warning: okta is a pull directory (kind okta)" in pull.stderr
    push = cli("token", "create", "--directory", "push")
    assert push.exit_code == 0 and "warning" not in push.stderr


def test_serve_on_a_taken_port_exits_2_with_one_line(cli: Cli, taken_port: int) -> None:
    result = _store(cli)("serve", "--listen", f"127.0.0.1:{taken_port}")
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{taken_port}", "already in use", "--listen")


def test_run_on_a_taken_port_exits_2_with_one_line(tmp_path: Path, taken_port: int) -> None:
    extra = f'[server]\nlisten = "127.0.0.1:{taken_port}"\n'
    cli = _store(Cli(write_config(tmp_path / "config.toml", extra=extra)))
    assert_one_line_error(cli("run"), f"cannot listen on 127.0.0.1:{taken_port}", "already in use")


def test_the_readme_documents_the_same_exit_codes_as_cli_exitcodes() -> None:
    from cli import exitcodes

    readme = (ROOT / "README.md").read_text()
    documented = {int(m) for m in re.findall(r"^\| `(\d)` \|", readme, re.MULTILINE)}
    defined = {v for k, v in vars(exitcodes).items() if k.startswith("EXIT_")}
    assert documented == defined == {0, 1, 2, 3, 4, 5}


def test_a_run_whose_idp_read_was_incomplete_exits_5(tmp_path: Path) -> None:
    """Exit code 5 (partial) as documented: the read failed part way, the adds went in, nothing
    was removed. It exited 0, so a cron job could not tell that removals were skipped."""
    from contextlib import ExitStack

    from tests.daemon.helpers import start_fakes

    with ExitStack() as stack:
        fakes = start_fakes(stack, tmp_path, {"gpart": "graph"}, schedule="1h")
        cli = _store(Cli(write_config(tmp_path / "config.toml", extra=fakes.toml)))
        fakes.faults["gpart"].add("error", path="transitiveMembers", after=2, times=None, status=503)
        result = cli("run", "--once", "--json")
        assert json.loads(result.stdout)[0]["complete"] is False, result.output
        assert result.exit_code == 5, result.output
