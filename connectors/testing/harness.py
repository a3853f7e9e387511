"""How tests, benchmarks and `syncd demo` get a fake IdP and a connector pointed at it.

Each fake module (`connectors.testing.graph`, `.okta`, `.google`) defines one `FakeIdP`
subclass and registers it with `@register_fake`. A fake is given the `Tenant` and a
`FaultPlan`; it builds an ASGI app that serves the vendor's API (and token endpoint) for that
tenant, and builds the real connector configured to talk to a running copy of that app.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from connectors.base import Connector
from connectors.testing.faults import FaultPlan
from connectors.testing.killswitch import KillSwitch
from connectors.testing.server import ServerThread
from connectors.testing.tenant import Tenant


class FakeIdP(abc.ABC):
    kind: ClassVar[str]

    def __init__(self, tenant: Tenant, faults: FaultPlan | None = None, **options: Any) -> None:
        self.tenant = tenant
        self.faults = faults or FaultPlan()
        self.options = options

    @abc.abstractmethod
    def app(self) -> Any:
        """The ASGI app serving this vendor's API for `self.tenant`."""

    @abc.abstractmethod
    def connector(self, base_url: str, *, directory: str = "test", **options: Any) -> Connector:
        """The real connector, configured to read this fake served at `base_url`.

        `options` are connector settings (concurrency, time budget, retry limits, scope)
        passed through by the caller.
        """

    def external_id(self, tenant_id: str) -> str:
        """The vendor-formatted id the connector will report for a tenant user or group id."""
        return tenant_id


_FAKES: dict[str, type[FakeIdP]] = {}


def register_fake(cls: type[FakeIdP]) -> type[FakeIdP]:
    _FAKES[cls.kind] = cls
    return cls


def fake_class(kind: str) -> type[FakeIdP]:
    import importlib

    if kind not in _FAKES:
        importlib.import_module(f"connectors.testing.{kind}")
    return _FAKES[kind]


@contextmanager
def running_fake(kind: str, tenant: Tenant, faults: FaultPlan | None = None,
                 **options: Any) -> Iterator[tuple[FakeIdP, str]]:
    """Start the fake for `kind` on 127.0.0.1; yields (fake, base_url). With a ``die`` rule in
    `faults`, the base URL is a `KillSwitch` in front of the fake."""
    fake = fake_class(kind)(tenant, faults, **options)
    srv = ServerThread(fake.app()).start()
    switch = KillSwitch(srv.port, fake.faults).start() if fake.faults.dies else None
    try:
        yield fake, (switch.url if switch else srv.url)
    finally:
        if switch is not None:
            switch.stop()
        srv.stop()
