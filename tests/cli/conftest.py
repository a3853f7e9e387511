"""CLI fixtures: a config file naming a store, a runner, and rows written through the models."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import Engine
from typer.testing import CliRunner

from cli.main import app
from syncd.store.engine import session_scope
from syncd.store.models import AuditEvent, Directory, Membership, Team, User, UserEmail

NOW = datetime.now(UTC)
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Cli:
    config: Path

    def __call__(self, *args: str, env: dict[str, str | None] | None = None) -> Result:
        """`syncd ARGS` with $SYNCD_CONFIG naming this test's config file."""
        full_env = {"SYNCD_CONFIG": str(self.config), "COLUMNS": "200", **(env or {})}
        return CliRunner().invoke(app, list(args), env=full_env)

    def json(self, *args: str) -> object:
        result = self(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


def write_config(path: Path, *, url: str | None = None, extra: str = "") -> Path:
    store = f"[store]\nurl = {json.dumps(url)}\n" if url else ""
    path.write_text(f'state_dir = "state"\n{store}{extra}')
    return path


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """A config with a fresh SQLite store under tmp_path/state (not created yet)."""
    return Cli(write_config(tmp_path / "config.toml"))


@pytest.fixture
def store_cli(engine: Engine, tmp_path: Path) -> Cli:
    """A config naming the migrated `engine` store (SQLite and PostgreSQL)."""
    return Cli(write_config(tmp_path / "config.toml", url=engine.url.render_as_string(hide_password=False)))


def _user(uid: str, name: str, directory: str | None, *, active: bool = True, emails: tuple[str, ...] = ()):
    user = User(
        id=uid,
        directory=directory,
        external_id=f"ext-{uid}" if directory else None,
        user_name=name,
        user_name_key=name.casefold(),
        display_name=name.split("@")[0].title(),
        active=active,
    )
    mails = [
        UserEmail(user_id=uid, value=m, value_key=m.casefold(), type="work", primary=(i == len(emails) - 1))
        for i, m in enumerate(emails)
    ]
    return user, mails


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    """Two directories and local rows: users (one inactive), teams with members, audit events."""
    with session_scope(engine) as s:
        s.add(Directory(name="entra", kind="graph"))
        s.add(Directory(name="okta", kind="okta"))
        s.flush()
        for user, mails in (
            _user("u1", "alice@example.com", "entra", emails=("alice.old@example.com", "alice@example.com")),
            _user("u2", "Bob@example.com", "entra", emails=("bob@example.com",)),
            _user("u3", "carol@example.com", "entra", active=False),
            _user("u4", "dave@example.com", "okta"),
            _user("u5", "admin", None),
        ):
            s.add(user)
            s.flush()
            s.add_all(mails)
        s.add(
            Team(
                id="t1",
                directory="entra",
                display_name="Engineering",
                display_name_key="engineering",
                member_count=2,
                external_id="g1",
            )
        )
        s.add(
            Team(id="t2", directory="entra", display_name="design", display_name_key="design", member_count=1)
        )
        s.add(Team(id="t3", directory="okta", display_name="Ops", display_name_key="ops", member_count=1))
        s.add(Team(id="t4", directory=None, display_name="Empty", display_name_key="empty"))
        s.flush()
        for team, user, directory in (
            ("t1", "u1", "entra"),
            ("t1", "u2", "entra"),
            ("t2", "u3", "entra"),
            ("t3", "u4", "okta"),
        ):
            s.add(Membership(team_id=team, user_id=user, directory=directory, source="pull"))
        for i, (ago, directory, action) in enumerate(
            (
                (timedelta(days=3), "entra", "user.create"),
                (timedelta(hours=2), "okta", "user.create"),
                (timedelta(minutes=30), "entra", "team.members.add"),
                (timedelta(minutes=1), None, "user.patch"),
            )
        ):
            s.add(
                AuditEvent(
                    at=NOW - ago,
                    directory=directory,
                    actor="pull:x" if directory else "cli",
                    action=action,
                    resource_type="user",
                    resource_id=f"u{i + 1}",
                    after={"n": i},
                )
            )
    return engine


@dataclass
class Review:
    """A fake Graph tenant served as a pull directory with a uniquely named directory (advisory
    lock keys are database-wide), a store on each backend, and `syncd` pointed at both."""

    cli: Cli
    engine: Engine
    directory: str
    fake: Any


@pytest.fixture
def review(engine: Engine, tmp_path: Path) -> Iterator[Review]:
    from tests.daemon.helpers import start_fakes

    name = f"e{uuid.uuid4().hex[:10]}"
    with ExitStack() as stack:
        fakes = start_fakes(stack, tmp_path, {name: "graph"}, schedule="1h")
        toml = fakes.toml + f"\n[directories.{name}.safety]\nmax_removals = 3\n"
        path = write_config(
            tmp_path / "config.toml", url=engine.url.render_as_string(hide_password=False), extra=toml
        )
        yield Review(Cli(path), engine, name, fakes.fakes[name])
