"""A missing or broken config or store: one line on stderr with the fix, exit code 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result

from tests.cli.conftest import ROOT, Cli, write_config


def assert_one_line_error(result: Result, *phrases: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("syncd: error: ")
    assert "Traceback" not in result.output
    for phrase in phrases:
        assert phrase in lines[0]


@pytest.mark.parametrize("command", [["users", "list"], ["teams", "list"], ["audit"]])
def test_reading_a_store_that_does_not_exist_says_run_db_upgrade(
    cli: Cli, tmp_path: Path, command: list[str]
) -> None:
    assert_one_line_error(cli(*command), "does not exist yet", "run `syncd db upgrade`")
    assert not (tmp_path / "state" / "syncd.db").exists()  # nothing is created implicitly


def test_a_store_without_schema_says_run_db_upgrade(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "syncd.db").touch()
    assert_one_line_error(cli("users", "list"), "has no schema", "run `syncd db upgrade`")


def test_a_config_file_that_does_not_exist(cli: Cli, tmp_path: Path) -> None:
    result = cli("--config", str(tmp_path / "nope.toml"), "users", "list")
    assert_one_line_error(result, "nope.toml", "config file not found", "create it")
    result = cli("users", "list", env={"SYNCD_CONFIG": str(tmp_path / "gone.toml")})
    assert_one_line_error(result, "gone.toml", "named by SYNCD_CONFIG")


@pytest.mark.parametrize(
    ("text", "phrases"),
    [
        ("[store\n", ["config.toml:1:7", "TOML syntax"]),
        ("[server]\nlisten = 80\n", ["config.toml:2", "server.listen", "syncd config check"]),
        (
            '[directories.a]\nkind = "scim"\n[directories.b]\nkind = "x"\n',
            ["config.toml:4", "directories.b.kind"],
        ),
    ],
)
def test_a_broken_config(tmp_path: Path, text: str, phrases: list[str]) -> None:
    (tmp_path / "config.toml").write_text(text)
    assert_one_line_error(Cli(tmp_path / "config.toml")("users", "list"), *phrases)


def test_several_config_problems_still_make_one_line(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("a = 1\nb = 2\n")
    assert_one_line_error(
        Cli(tmp_path / "config.toml")("db", "upgrade"), "config.toml:1: a: unknown key (and 1 more)"
    )


def test_a_bad_store_url(tmp_path: Path) -> None:
    cli = Cli(write_config(tmp_path / "config.toml", url="mysql://db/syncd"))
    assert_one_line_error(cli("db", "upgrade"), "store.url", "postgresql")


@pytest.mark.parametrize("command", [["db", "upgrade"], ["db", "status"], ["users", "list"]])
def test_an_unreachable_store(tmp_path: Path, command: list[str]) -> None:
    cli = Cli(write_config(tmp_path / "config.toml", url="postgresql+psycopg://syncd:pw@127.0.0.1:1/syncd"))
    result = cli(*command)
    assert_one_line_error(result, "cannot reach the store", "127.0.0.1:1", "check [store] url in")
    assert "pw" not in result.stderr.replace("postgresql+psycopg://syncd:***", "")


def test_the_installed_entry_point_prints_no_traceback(tmp_path: Path) -> None:
    """Through `main()` in a real process, as a user runs it."""
    config = write_config(tmp_path / "config.toml", url="postgresql+psycopg://nobody@127.0.0.1:1/x")
    env = {**os.environ, "SYNCD_CONFIG": str(config)}
    env.pop("SYNCD_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "teams", "list"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("syncd: error: cannot reach the store")


def test_error_lines_show_control_characters_as_escapes(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    """`fail()` and the last-resort handler print messages that can carry a name or an IdP's or
    store's text: an ESC or a bidi override in one must not reach the terminal raw."""
    import typer

    from cli import main as cli_main
    from cli.context import fail

    try:
        fail("no team 'x\x1b[2J'", "see \u202eabc")
    except typer.Exit as exc:
        assert exc.exit_code == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\u202e" not in err and "x\\x1b[2J" in err and "\\u202eabc" in err

    def boom(**_: object) -> None:
        raise RuntimeError("bad \x9b31m \x1b]8;;http://evil\x07")

    monkeypatch.setattr(cli_main, "app", boom)
    monkeypatch.delenv("SYNCD_DEBUG", raising=False)
    try:
        cli_main.main()
    except SystemExit as exc:
        assert exc.code == 1
    err = capsys.readouterr().err
    assert not any(c in err for c in "\x1b\x9b\x07") and "bad \\x9b31m" in err, err
