"""In-process daemon parts over a fake Graph tenant and the `engine` store (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from syncd.config import Settings, parse_config
from tests.daemon.helpers import Fakes, start_fakes


@dataclass
class Env:
    engine: Engine
    settings: Settings
    fakes: Fakes
    tmp: Path

    @property
    def fake(self) -> Any:
        return self.fakes.fakes["entra"]


def settings_for(engine: Engine, tmp: Path, toml: str) -> Settings:
    url = engine.url.render_as_string(hide_password=False)
    return parse_config(f'state_dir = "{tmp}"\n[store]\nurl = "{url}"\n{toml}')


@pytest.fixture
def env(engine: Engine, tmp_path: Path) -> Iterator[Env]:
    """A fake Graph tenant served as directory "entra" (login budget 3 s)."""
    with ExitStack() as stack:
        fakes = start_fakes(stack, tmp_path, {"entra": "graph"}, schedule="1h")
        yield Env(engine, settings_for(engine, tmp_path, fakes.toml), fakes, tmp_path)
