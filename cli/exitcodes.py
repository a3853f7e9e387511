"""The CLI's exit codes: one table, documented in the README and `syncd --help`.

| code | meaning |
|---|---|
| 0 | success |
| 1 | an unexpected failure: a bug (`SYNCD_DEBUG=1` shows the traceback) |
| 2 | bad usage, or a config or store that cannot be used; one line on stderr says the fix |
| 3 | a safety stop: removals above a threshold, nothing written, the plan kept for review |
| 4 | an IdP or target unreachable or refusing the credentials, or the directory locked by another run |
| 5 | partial: the read was incomplete; adds and updates applied, nothing removed |

When several directories run in one command, the highest-priority code wins:
1 > 2 > 4 > 3 > 5 > 0.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_STOPPED = 3
EXIT_UNREACHABLE = 4
EXIT_PARTIAL = 5

_PRIORITY = (EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_STOPPED, EXIT_PARTIAL, EXIT_OK)


def worst(codes: list[int]) -> int:
    """The code a command that ran several things exits with (see the table's priority)."""
    for code in _PRIORITY:
        if code in codes:
            return code
    return EXIT_OK


def for_run(outcome: str, failure: type[BaseException] | None = None, *, complete: bool = True) -> int:
    """The code for one sync run's outcome; `failure` is the class of the error that failed it,
    `complete` whether its IdP read was (a run applied from an incomplete read is 5, partial).

    An IdP that cannot be reached, throttles past the budget, refuses the credentials or
    answers nonsense is 4; a connector whose settings cannot work is 2; a locked directory is
    4 (another run has it); any other failure is 1.
    """
    from connectors.base import ConfigError, ConnectorError

    if outcome == "failed":
        if failure is not None and issubclass(failure, ConfigError):
            return EXIT_USAGE
        if failure is not None and issubclass(failure, ConnectorError):
            return EXIT_UNREACHABLE
        return EXIT_FAILED
    if outcome in ("applied", "planned") and not complete:
        return EXIT_PARTIAL
    return {"busy": EXIT_UNREACHABLE, "stopped": EXIT_STOPPED, "partial": EXIT_PARTIAL}.get(outcome, EXIT_OK)
