"""`syncd config check`: every problem with file:line (exit 2), or "ok" and a summary (exit 0)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import Cli

GOOD = """\
state_dir = "state"

[server]
listen = "0.0.0.0:8443"
public_url = "https://syncd.example.com"

[directories.entra-push]
kind = "scim"

[directories.entra-contoso]
kind = "graph"
tenant_id = "t"
client_id = "c"
client_secret_env = "ENTRA_SECRET"
schedule = "30m"
"""


def check(tmp_path: Path, text: str, *args: str, env: dict[str, str | None] | None = None):  # type: ignore[no-untyped-def]
    (tmp_path / "config.toml").write_text(text)
    return Cli(tmp_path / "config.toml")("config", "check", *args, env=env)


def test_a_good_file_prints_ok_and_a_summary_without_secrets(tmp_path: Path) -> None:
    result = check(tmp_path, GOOD, env={"ENTRA_SECRET": "very-secret-value"})
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"ok: {tmp_path / 'config.toml'}")
    for text in (
        "0.0.0.0:8443",
        "https://syncd.example.com",
        "entra-contoso",
        "graph",
        "30m",
        "env ENTRA_SECRET",
        "entra-push",
        "scim",
        str(tmp_path / "state" / "syncd.db"),
    ):
        assert text in result.stdout, text
    assert "very-secret-value" not in result.output


def test_a_good_file_as_json(tmp_path: Path) -> None:
    result = check(tmp_path, GOOD, "--json", env={"ENTRA_SECRET": "very-secret-value"})
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["server"]["listen"] == "0.0.0.0:8443"
    assert [d["name"] for d in data["directories"]] == ["entra-push", "entra-contoso"]
    assert "very-secret-value" not in result.stdout


def test_the_config_option_after_the_command(tmp_path: Path) -> None:
    other = tmp_path / "other.toml"
    other.write_text('[log]\nlevel = "debug"\n')
    result = Cli(tmp_path / "absent.toml")("config", "check", "--config", str(other))
    assert result.exit_code == 0 and f"ok: {other}" in result.stdout


def test_no_file_at_all_checks_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("syncd.config.SEARCH_PATH", (Path("config.toml"),))
    result = Cli(tmp_path)(
        "config", "check", env={"SYNCD_CONFIG": None, "STATE_DIRECTORY": str(tmp_path / "s")}
    )
    assert result.exit_code == 0, result.output
    assert "built-in defaults" in result.stdout and str(tmp_path / "s" / "syncd.db") in result.stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[log]\nlevel = "info"\ncolour = true\n', ":3: log.colour: unknown key"),
        ("[server]\n\nmax_body_bytes = 1.5\n", ":3: server.max_body_bytes: expected an integer, got float"),
        ('[directories.Entra]\nkind = "scim"\n', ":1: directories.Entra: bad directory name"),
        ('[log]\nlevel = "info\n', ":2:14: TOML syntax: "),
    ],
    ids=["unknown key", "wrong type", "bad directory name", "toml syntax"],
)
def test_a_bad_file_prints_each_problem_with_its_location(tmp_path: Path, text: str, expected: str) -> None:
    result = check(tmp_path, text)
    assert result.exit_code == 2
    first, count = result.stderr.splitlines()
    assert first.startswith(f"{tmp_path / 'config.toml'}{expected}"), first
    assert count == "1 problem(s)"
    assert "Traceback" not in result.output


def test_every_problem_is_listed(tmp_path: Path) -> None:
    result = check(tmp_path, 'bogus = 1\n[server]\nlisten = 1\n[directories.x]\nkind = "ldap"\n')
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert [line.split(": ")[0].rsplit(":", 1)[1] for line in lines[:-1]] == ["1", "3", "5"]
    assert lines[-1] == "3 problem(s)"


def test_problems_as_json(tmp_path: Path) -> None:
    result = check(tmp_path, "[server]\nlisten = 1\n", "--json")
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert data["problems"] == [
        {
            "message": "expected a string, got integer",
            "key": "server.listen",
            "file": str(tmp_path / "config.toml"),
            "line": 2,
            "column": None,
        }
    ]


def test_a_keycloak_directory_is_noted_as_read_in_full(tmp_path: Path) -> None:
    text = GOOD + (
        '\n[directories.kc]\nkind = "keycloak"\nserver_url = "https://sso.example.com"\n'
        'realm = "acme"\nclient_id = "syncd"\nclient_secret_env = "KC_SECRET"\n'
    )
    result = check(tmp_path, text, "--json", env={"ENTRA_SECRET": "x", "KC_SECRET": "kc-secret-value"})
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["directories"][-1]["credentials"] == "client syncd, secret from env KC_SECRET"
    assert any("'kc'" in n and "read in full" in n for n in data["notes"])
    assert "kc-secret-value" not in result.stdout


def test_onelogin_shows_its_credential_source_and_a_bad_teams_value_its_line(tmp_path: Path) -> None:
    block = (
        '[directories.onelogin]\nkind = "onelogin"\nbase_url = "https://acme.onelogin.com"\n'
        'client_id = "abc123"\nclient_secret_env = "OL_SECRET"\n'
    )
    good = check(tmp_path, block, env={"OL_SECRET": "very-secret-value"})
    assert good.exit_code == 0, good.output
    assert "onelogin" in good.stdout and "client abc123, secret from env OL_SECRET" in good.stdout
    assert "very-secret-value" not in good.output
    bad = check(tmp_path, block + 'teams = "users"\n', env={"OL_SECRET": "x"})
    assert bad.exit_code == 2 and ":6: directories.onelogin.teams" in bad.output, bad.output


def test_workers_are_noted_as_serve_only(tmp_path: Path) -> None:
    text = GOOD.replace(
        'public_url = "https://syncd.example.com"\n',
        'public_url = "https://syncd.example.com"\nworkers = 4\n',
    )
    result = check(tmp_path, text, "--json", env={"ENTRA_SECRET": "x"})
    assert result.exit_code == 0, result.output
    assert any("workers = 4 applies to `syncd serve`" in n for n in json.loads(result.stdout)["notes"])
    plain = check(tmp_path, GOOD, "--json", env={"ENTRA_SECRET": "x"})
    assert not any("workers" in n for n in json.loads(plain.stdout)["notes"])
