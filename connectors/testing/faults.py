"""Fault injection shared by the fake IdP servers.

A `FaultPlan` is a list of `FaultRule`s checked in order on every request. A rule matches a
request whose path contains `path` (and whose method is `method`, if given); it skips its first
`after` matching requests, then fires `times` times (None: forever). What a fired rule sends is
vendor-specific: each fake server turns the rule into its vendor's status, headers and body.

Kind ``die`` is the same for every vendor: when it fires, the IdP host dies. The fake must then
be served behind a `connectors.testing.killswitch.KillSwitch` (`running_fake` puts one in front
when the plan has a ``die`` rule): every open connection is reset, the request that fired gets
no answer, and every later connection is accepted and reset at once, counted in
`FaultPlan.after_death` (requests attempted against the dead host).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal["throttle", "error", "timeout", "bad_json", "revoked", "expired_cursor", "die"]


@dataclass
class FaultRule:
    kind: FaultKind
    path: str = ""
    method: str | None = None
    after: int = 0
    times: int | None = 1
    retry_after: float = 1.0  # seconds, for "throttle"
    status: int = 503  # for "error"
    delay: float = 30.0  # seconds, for "timeout": the answer comes after this long
    seen: int = 0
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.path not in path or (self.method and self.method.upper() != method.upper()):
            return False
        self.seen += 1
        if self.seen <= self.after:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        self.fired += 1
        return True


@dataclass
class FaultPlan:
    rules: list[FaultRule] = field(default_factory=list)
    requests: int = 0
    dead: bool = False
    after_death: int = 0  # connections attempted after a ``die`` rule fired (kill switch counts)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _on_death: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @property
    def dies(self) -> bool:
        return any(rule.kind == "die" for rule in self.rules)

    def on_death(self, hook: Callable[[], None]) -> None:
        """Call `hook` (it kills the host, and returns once it is dead) when ``die`` fires."""
        self._on_death.append(hook)

    def count_after_death(self) -> None:
        with self._lock:
            self.after_death += 1

    def add(self, kind: FaultKind, **kw: object) -> FaultRule:
        rule = FaultRule(kind, **kw)  # type: ignore[arg-type]
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def check(self, method: str, path: str) -> FaultRule | None:
        """Count the request and return the first rule that fires for it, if any."""
        with self._lock:
            self.requests += 1
            fired = next((rule for rule in self.rules if rule.matches(method, path)), None)
            dies = fired is not None and fired.kind == "die" and not self.dead
            if dies:
                self.dead = True
        if dies:
            if not self._on_death:
                raise RuntimeError("a 'die' fault needs a kill switch in front of the fake")
            for hook in self._on_death:
                hook()
        return fired


async def sleep_for(rule: FaultRule) -> None:
    await asyncio.sleep(rule.delay)
