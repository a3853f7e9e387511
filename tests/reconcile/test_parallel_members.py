"""`syncd.reconcile.parallel_members`: shares of whole teams in plan order, counts and progress
summed over workers, the first error raised and the other workers stopped after their batch.
(The stores a parallel apply leaves are checked by tests/reconcile/test_bulk_contract.py on
PostgreSQL, where apply uses it.)"""

from __future__ import annotations

import threading

import pytest

from syncd.reconcile import parallel_members
from syncd.reconcile.apply import ApplyProgress, ApplyResult
from syncd.reconcile.plan import MemberChange


def mc(team: str, n: int) -> MemberChange:
    return MemberChange("add_members", team, tuple(f"{team}-u{i}" for i in range(n)))


@pytest.mark.parametrize(
    ("sizes", "n", "want"),
    [
        ([], 2, []),
        ([3], 2, [["t0"]]),
        ([5, 1, 1, 1], 2, [["t0"], ["t1", "t2", "t3"]]),
        ([2, 2, 2, 2], 2, [["t0", "t2"], ["t1", "t3"]]),
        ([4, 3, 2, 1], 3, [["t0"], ["t1"], ["t2", "t3"]]),
        ([1, 1], 1, [["t0", "t1"]]),
    ],
)
def test_shares_hold_whole_teams_in_plan_order(sizes: list[int], n: int, want: list[list[str]]) -> None:
    changes = [mc(f"t{i}", k) for i, k in enumerate(sizes)]
    got = parallel_members.shares(changes, n)
    assert [[c.team_external_id for c in s] for s in got] == want


def test_counts_and_progress_are_summed_over_workers() -> None:
    changes = [mc(f"t{i}", 3) for i in range(6)]
    seen: list[tuple[str, int, int]] = []
    threads: set[str] = set()
    gate = threading.Barrier(2)

    def write(part: list[MemberChange], res: ApplyResult, tick: ApplyProgress) -> None:
        gate.wait(timeout=10)  # both shares really run at once
        threads.add(threading.current_thread().name)
        done = 0
        for c in part:
            res.add("add_members", len(c.user_external_ids))
            done += len(c.user_external_ids)
            tick("members", done, -1)

    result = ApplyResult()
    parallel_members.run(write, changes, result, lambda *a: seen.append(a), workers=2)
    assert result.applied == {"add_members": 18}
    assert len(threads) == 2
    assert [s[1] for s in seen] == sorted(s[1] for s in seen) and seen[-1] == ("members", 18, 18)


def test_one_share_runs_in_the_callers_thread() -> None:
    names: list[str] = []

    def write(part: list[MemberChange], res: ApplyResult, tick: ApplyProgress) -> None:
        names.append(threading.current_thread().name)

    parallel_members.run(write, [mc("t0", 2)], ApplyResult(), lambda *a: None)
    assert names == [threading.current_thread().name]


def test_a_failing_worker_stops_the_others_after_their_batch_and_its_error_is_raised() -> None:
    changes = [mc(f"t{i}", 1) for i in range(10)]
    failed = threading.Event()
    written: list[str] = []

    def write(part: list[MemberChange], res: ApplyResult, tick: ApplyProgress) -> None:
        if part[0].team_external_id == "t1":
            failed.set()
            raise RuntimeError("boom")
        failed.wait(timeout=10)
        for i, c in enumerate(part):
            written.append(c.team_external_id)
            res.add("add_members", 1)
            tick("members", i + 1, -1)

    result = ApplyResult()
    with pytest.raises(RuntimeError, match="boom"):
        parallel_members.run(write, changes, result, lambda *a: None, workers=2)
    assert written == ["t0"] and result.applied == {"add_members": 1}


def test_shares_by_weight_one_deal_changes_in_turn_keeping_plan_order() -> None:
    changes = [mc(f"t{i}", 10 - i) for i in range(5)]
    got = parallel_members.shares(changes, 2, parallel_members.one)
    assert [[c.team_external_id for c in s] for s in got] == [["t0", "t2", "t4"], ["t1", "t3"]]
