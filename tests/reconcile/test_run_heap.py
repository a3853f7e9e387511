"""run_sync keeps what was alive before the IdP read out of the cyclic collector during the read
(`heap_frozen`), and hands it back afterwards, whatever the read's outcome."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from connectors.base import Connector, ProgressCallback, UnavailableError
from syncd.reconcile.run import RunOptions, run_sync
from syncd.reconcile.snapshot import Snapshot, SnapshotUser, UserGroups


class Probe(Connector):
    """A connector that records, during its read, whether an object made before the run is
    frozen (out of the collector's generations) and the freeze count."""

    kind = "graph"

    def __init__(self, directory: str, old: object, fail: bool = False) -> None:
        super().__init__(directory)
        self.old, self.fail = old, fail
        self.seen: dict[str, Any] = {}

    async def snapshot(
        self, *, cursor: str | None = None, progress: ProgressCallback | None = None
    ) -> Snapshot:
        self.seen["frozen"] = gc.get_freeze_count()
        self.seen["old_in_gens"] = any(o is self.old for o in gc.get_objects())
        if self.fail:
            raise UnavailableError("the IdP is down")
        return Snapshot(self.directory, users={"u1": SnapshotUser("u1", "alice@example.com")})

    async def user_groups(self, user: str) -> UserGroups:
        return UserGroups(self.directory, None)


@pytest.mark.parametrize("fail", [False, True])
def test_the_heap_before_the_read_is_frozen_during_it_and_whole_after(engine: Any, fail: bool) -> None:
    gc.unfreeze()
    old: list[object] = [object()]  # tracked by the collector, alive before the run
    conn = Probe("acme", old, fail=fail)
    res = run_sync(engine, conn, RunOptions(allow_deletes=True))
    assert res.outcome == ("failed" if fail else "applied")
    assert conn.seen["frozen"] > 0
    assert conn.seen["old_in_gens"] is False
    assert gc.get_freeze_count() == 0
    assert any(o is old for o in gc.get_objects())
