"""The CLI's start path: `syncd --version` loads no store, web or SDK code, and a store command
loads no web or SDK code (checked through sys.modules in a fresh interpreter; no timings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from cli.main import COMMANDS, SUMMARIES
from tests.cli.conftest import ROOT, Cli

WEB_AND_SDKS = {
    "fastapi",
    "starlette",
    "uvicorn",
    "apscheduler",
    "prometheus_client",
    "okta",
    "aiohttp",
    "msgraph",
    "azure",
    "kiota_abstractions",
    "googleapiclient",
    "httplib2",
    "alembic",
    "connectors",
}
STORE = {"sqlalchemy", "sqlmodel", "syncd"}

_PROBE = """
import json, sys
sys.argv = ["syncd", *json.loads(sys.argv[1])]
from cli.main import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def loaded_by(*args: str, cwd: Path = ROOT) -> set[str]:
    """Top-level packages imported by `syncd ARGS` in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.splitlines()[-1]))


def test_version_loads_no_store_web_or_sdk_code() -> None:
    assert loaded_by("--version") & (WEB_AND_SDKS | STORE | {"typer", "rich", "pydantic"}) == set()


@pytest.mark.parametrize(
    "command", [["users", "list"], ["teams", "list", "--members", "--json"]], ids=" ".join
)
def test_a_listing_loads_no_orm_pydantic_web_or_sdk_code(cli: Cli, command: list[str]) -> None:
    assert cli("db", "upgrade").exit_code == 0
    modules = loaded_by("--config", str(cli.config), *command)
    assert "sqlite3" in modules  # the probe really read the store
    assert modules & (WEB_AND_SDKS | {"sqlalchemy", "sqlmodel", "pydantic"}) == set()
    if "--json" not in command:  # JSON is printed with typer.echo, as by every command
        assert "typer" not in modules


def test_a_listing_the_fast_path_cannot_serve_still_runs(cli: Cli) -> None:
    assert cli("db", "upgrade").exit_code == 0
    modules = loaded_by("--config", str(cli.config), "users", "list", "--limit=5")
    assert "pydantic" in modules  # Typer parsed it (its parameters go through pydantic)
    assert "sqlite3" in modules and "sqlalchemy" not in modules  # and its command read fast
    assert modules & WEB_AND_SDKS == set()


@pytest.mark.parametrize("package", ["okta", "google"])
def test_a_connector_package_imports_its_sdk_only_with_the_connector(package: str) -> None:
    pure = {"okta": "connectors.okta.reader", "google": "connectors.google.expand"}[package]
    sdk = {"okta": "okta", "google": "googleapiclient"}[package]
    code = (
        f"import sys, {pure}; assert {sdk!r} not in sys.modules, 'sdk loaded by {pure}';"
        f"from connectors.base import connector_class; connector_class({package!r});"
        f"assert {sdk!r} in sys.modules"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr


def test_commands_maps_every_command_to_the_module_that_registers_it() -> None:
    for module in set(COMMANDS.values()):
        sub = typer.Typer()
        __import__(module, fromlist=["register"]).register(sub)
        names = set(typer.main.get_group(sub).commands)
        assert names == {n for n, m in COMMANDS.items() if m == module}, module


def test_help_lists_every_command_with_its_own_help_and_loads_no_command_module() -> None:
    for module in set(COMMANDS.values()):
        sub = typer.Typer()
        __import__(module, fromlist=["register"]).register(sub)
        for name, command in typer.main.get_group(sub).commands.items():
            own = " ".join((command.short_help or command.help or "").split("\n\n")[0].split())
            assert SUMMARIES[name] == own, name
    assert set(SUMMARIES) == set(COMMANDS)
    modules = loaded_by("--help")
    assert modules & (WEB_AND_SDKS | STORE) == set()
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
        timeout=120,
    ).stdout
    assert "([webhooks.NAME] in the config)" in out  # markup in help text is escaped
    assert "(`[targets.NAME]`)" in out


def test_head_revision_is_alembics_head() -> None:
    from syncd.store.engine import _alembic_head, head_revision

    assert head_revision() == _alembic_head()
