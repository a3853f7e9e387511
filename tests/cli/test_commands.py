"""The CLI commands end to end through Typer: help, db, users, teams, audit."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Cli


def test_help_says_what_syncd_is_lists_commands_and_exit_codes(cli: Cli) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    out = " ".join(result.stdout.split())
    assert "in step with your identity providers" in out
    for command in ("db", "users", "teams", "audit", "config"):
        assert f" {command} " in out
    assert "Exit codes: 0 success" in out and "2 bad usage" in out


def test_every_group_has_help(cli: Cli) -> None:
    for args in (
        ["db", "--help"],
        ["users", "list", "--help"],
        ["teams", "list", "--help"],
        ["audit", "-h"],
        ["config", "check", "--help"],
    ):
        assert cli(*args).exit_code == 0, args


def test_db_upgrade_creates_a_fresh_sqlite_store_then_is_idempotent(cli: Cli, tmp_path: Path) -> None:
    db_file = tmp_path / "state" / "syncd.db"
    before = cli("db", "status", "--json")
    assert before.exit_code == 2 and "run `syncd db upgrade` to create it" in before.stderr
    status = json.loads(before.stdout)
    assert status == {
        "store": f"sqlite:///{db_file}",
        "current": None,
        "head": status["head"],
        "up_to_date": False,
    }
    assert not db_file.exists()  # status does not create the store

    first = cli("db", "upgrade")
    assert first.exit_code == 0, first.output
    assert f"upgraded (empty) → {status['head']}" in first.stdout
    assert db_file.exists()
    again = cli("db", "upgrade")
    assert again.exit_code == 0 and f"already at {status['head']}" in again.stdout
    assert cli.json("db", "status")["up_to_date"] is True


def test_db_upgrade_json_reports_from_and_to(cli: Cli) -> None:
    data = cli.json("db", "upgrade")
    assert data["from"] is None and data["to"] == data["head"]


def test_users_list_is_empty_on_a_new_store(cli: Cli) -> None:
    assert cli("db", "upgrade").exit_code == 0
    assert cli.json("users", "list") == []
    table = cli("users", "list")
    assert table.exit_code == 0 and "no users" in table.stdout


def test_users_list_json_shows_stored_rows(store_cli: Cli, seeded) -> None:  # type: ignore[no-untyped-def]
    rows = store_cli.json("users", "list")
    assert [r["user_name"] for r in rows] == [
        "admin",
        "alice@example.com",
        "Bob@example.com",
        "dave@example.com",
    ]
    alice = rows[1]
    assert alice["directory"] == "entra" and alice["email"] == "alice@example.com" and alice["active"] is True
    assert alice["updated_at"].endswith("+00:00")


def test_users_list_filters(store_cli: Cli, seeded) -> None:  # type: ignore[no-untyped-def]
    names = lambda *a: [r["user_name"] for r in store_cli.json("users", "list", *a)]  # noqa: E731
    assert names("--directory", "entra", "--inactive") == [
        "alice@example.com",
        "Bob@example.com",
        "carol@example.com",
    ]
    assert names("--local") == ["admin"]
    assert names("-d", "okta") == ["dave@example.com"]


def test_users_list_limit_says_how_many_there_are_and_all_shows_them(store_cli: Cli, seeded) -> None:  # type: ignore[no-untyped-def]
    result = store_cli("users", "list", "--limit", "1", "--json")
    assert result.exit_code == 0
    assert '"admin"' in result.stdout and "alice" not in result.stdout
    assert "showing 1 of 4 users; --all shows every one" in result.stderr
    every = store_cli("users", "list", "--limit", "1", "--all", "--json")
    assert every.exit_code == 0 and len(json.loads(every.stdout)) == 4 and "showing" not in every.stderr
    exact = store_cli("users", "list", "--limit", "4")
    assert exact.exit_code == 0 and "showing" not in exact.stderr


def test_users_list_table_shows_names_and_local_rows(store_cli: Cli, seeded) -> None:  # type: ignore[no-untyped-def]
    result = store_cli("users", "list")
    assert result.exit_code == 0
    for text in ("alice@example.com", "Bob@example.com", "local", "entra"):
        assert text in result.stdout
    assert "carol" not in result.stdout


def test_directory_and_local_together_is_a_usage_error(store_cli: Cli, seeded) -> None:  # type: ignore[no-untyped-def]
    result = store_cli("users", "list", "--directory", "entra", "--local")
    assert result.exit_code == 2 and "not both" in result.output


def test_global_json_option_before_the_command(store_cli: Cli, seeded) -> None:  # type: ignore[no-untyped-def]
    result = store_cli("--json", "teams", "list", "--local")
    assert result.exit_code == 0
    assert '"display_name": "Empty"' in result.stdout


def test_teams_list_members_gives_user_names_per_team(store_cli: Cli, seeded) -> None:  # type: ignore[no-untyped-def]
    rows = store_cli.json("teams", "list", "--members")
    assert {r["display_name"]: r["members"] for r in rows} == {
        "design": ["carol@example.com"],
        "Empty": [],
        "Engineering": ["alice@example.com", "Bob@example.com"],
        "Ops": ["dave@example.com"],
    }
    assert "members" not in store_cli.json("teams", "list")[0]
    table = store_cli("teams", "list", "--members", "--directory", "entra")
    assert table.exit_code == 0
    assert "alice@example.com, Bob@example.com" in table.stdout and "Ops" not in table.stdout


def test_audit_since_a_duration_and_a_date(store_cli: Cli, seeded) -> None:  # type: ignore[no-untyped-def]
    actions = lambda *a: [r["action"] for r in store_cli.json("audit", *a)]  # noqa: E731
    assert actions("--since", "1h") == ["user.patch", "team.members.add"]
    assert actions("--since", "2000-01-01") == [
        "user.patch",
        "team.members.add",
        "user.create",
        "user.create",
    ]
    assert actions("--since", "2d", "--directory", "okta") == ["user.create"]
    assert actions("--local") == ["user.patch"]
    table = store_cli("audit", "--since", "1h")
    assert table.exit_code == 0 and "team.members.add" in table.stdout and "okta" not in table.stdout


def test_audit_since_rejects_nonsense(store_cli: Cli, seeded) -> None:  # type: ignore[no-untyped-def]
    result = store_cli("audit", "--since", "yesterday-ish")
    assert result.exit_code == 2 and "--since" in result.output


def test_every_commands_help_text_keeps_its_lines_within_80_columns() -> None:
    """Typer's Rich help joins the lines of a help text's first paragraph but keeps the line
    breaks of the others, so a line there longer than an 80-column terminal leaves (79
    characters) is broken again mid-sentence: ragged paragraphs."""
    from typing import Any

    import typer.main

    from cli.main import app

    def walk(cmd: Any, path: str) -> list[tuple[str, str]]:
        out = [(path, cmd.help or "")]
        for name in cmd.list_commands(None) if hasattr(cmd, "list_commands") else ():
            out += walk(cmd.get_command(None, name), f"{path} {name}")
        return out

    long = [
        (path, line.strip())
        for path, text in walk(typer.main.get_command(app), "syncd")
        for line in text.partition("\n\n")[2].splitlines()
        if len(line.strip()) > 79
    ]
    assert long == []
