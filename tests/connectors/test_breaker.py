"""The per-run circuit breaker, and how a run's outcome maps to the CLI's exit code."""

from __future__ import annotations

import pytest

from cli.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, EXIT_STOPPED, EXIT_UNREACHABLE, worst
from cli.sync import exit_code
from connectors.base import CircuitOpen, ConfigError, UnavailableError
from connectors.breaker import Breaker
from syncd.reconcile.run import RunResult


def test_the_breaker_opens_after_threshold_failures_in_a_row_and_stays_open() -> None:
    b = Breaker(3)
    b.failure("ConnectError")
    b.failure()
    b.before()  # two in a row: still closed
    b.failure("ReadError")
    assert b.open
    with pytest.raises(CircuitOpen) as err:
        b.before()
    assert isinstance(err.value, UnavailableError)  # retry loops see a transient error
    b.success()  # an answer after it opened does not close it within the run
    assert b.open
    assert "3 connection failures in a row (last: ReadError)" in b.problem()
    assert "1 requests were not sent" in b.problem()


def test_any_answer_resets_the_streak() -> None:
    b = Breaker(2)
    for _ in range(10):
        b.failure()
        b.success()
    assert not b.open


@pytest.mark.parametrize("bad", [0, -1, True, 2.5])
def test_the_threshold_must_be_a_positive_integer(bad: object) -> None:
    with pytest.raises(ConfigError):
        Breaker(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("outcome", "complete", "unreachable", "code"),
    [
        ("applied", True, False, EXIT_OK),
        ("planned", True, False, EXIT_OK),
        ("partial", False, False, EXIT_PARTIAL),
        ("planned", False, False, EXIT_PARTIAL),  # a plan over a read cut short
        ("stopped", True, False, EXIT_STOPPED),
        ("failed", True, True, EXIT_UNREACHABLE),
        ("failed", True, False, EXIT_FAILED),
        ("busy", True, False, EXIT_UNREACHABLE),  # cli/exitcodes: a locked directory is 4
    ],
)
def test_exit_code_of_a_run(outcome: str, complete: bool, unreachable: bool, code: int) -> None:
    r = RunResult(1, "d", outcome, complete=complete, unreachable=unreachable)  # type: ignore[arg-type]
    assert exit_code(r) == code


def test_several_directories_exit_with_the_most_serious_code() -> None:
    assert worst([EXIT_OK, EXIT_PARTIAL]) == EXIT_PARTIAL
    assert worst([EXIT_PARTIAL, EXIT_UNREACHABLE, EXIT_OK]) == EXIT_UNREACHABLE
    assert worst([EXIT_STOPPED, EXIT_PARTIAL]) == EXIT_STOPPED
