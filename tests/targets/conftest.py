"""Fixtures of the delivery tests: a running LiteLLM-style gateway fake."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.testing.gateway import Gateway
from connectors.testing.server import ServerThread
from tests.targets.helpers import TOKEN


class RunningGateway:
    """The fake and its server; `restart()` stops the server and serves the same state again."""

    def __init__(self) -> None:
        self.gw = Gateway(TOKEN)
        self.srv = ServerThread(self.gw.app()).start()
        self.url = self.srv.url + "/scim/v2"

    def restart(self) -> None:
        port = self.srv.port
        self.srv.stop()
        self.srv = ServerThread(self.gw.app(), port=port).start()

    def stop(self) -> None:
        self.srv.stop()


@pytest.fixture
def gateway() -> Iterator[RunningGateway]:
    g = RunningGateway()
    try:
        yield g
    finally:
        g.stop()
