"""The `syncd` command: a small root that loads one module per command group on demand.

To add commands, write `cli/<name>.py` with `def register(app: typer.Typer) -> None` (add a
sub-app with `app.add_typer(...)` or a single command with `app.command(...)`), and map each
command name it registers to the module in `COMMANDS` below. Commands get the global options
through `cli.context.state(ctx)`.

Start-up cost: a command's module is imported only when that command runs (or for `--help`),
and command modules import the store, web server and IdP SDKs inside the command, so
`syncd --version` loads none of them (tests/cli/test_start.py). This module imports no Typer:
the Typer app (`app`, built by `cli.app` on first use) is not needed by `syncd --version` or by
the listings `cli.quick` serves.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from cli.exitcodes import EXIT_FAILED

#: command name → the module that registers it, in the order `syncd --help` lists them.
COMMANDS: dict[str, str] = {
    "db": "cli.db",
    "users": "cli.users",
    "teams": "cli.teams",
    "audit": "cli.audit",
    "config": "cli.config",
    "token": "cli.tokens",
    "serve": "cli.serve",
    "run": "cli.sync",
    "plan": "cli.sync",
    "runs": "cli.runs",
    "login-sync": "cli.login",
    "demo": "cli.demo",
    "webhooks": "cli.webhooks",
    "push": "cli.push",
    "targets": "cli.targets",
}

#: command name → its one-line help, as `syncd --help` lists it without importing the command's
#: module (tests/cli/test_start.py checks each against the command's own help).
SUMMARIES: dict[str, str] = {
    "db": "Create, upgrade and inspect the store's schema.",
    "users": "Users in the store.",
    "teams": "Teams (SCIM groups) in the store.",
    "audit": "Show audit events (who changed what), newest first.",
    "config": "Check the configuration.",
    "token": "Bearer tokens for IdPs pushing through SCIM.",
    "serve": "Serve the SCIM 2.0 endpoint at <public_url>/scim/v2 (store schema must be current).",
    "run": "Run the daemon (schedules, SCIM endpoint, admin API), or pull once with --once.",
    "plan": "Show exactly the changes a run would apply now (same as `run --once --dry-run`).",
    "runs": "Sync run history.",
    "login-sync": "Sync one user's team memberships from the IdP now (what the gateway asks at SSO sign-in).",
    "demo": "Sync the bundled fake IdP tenants into a SQLite store, deliver the teams to a stand-in gateway.",
    "webhooks": "Signed webhooks that receive the change feed (\\[webhooks.NAME] in the config).",
    "push": "Deliver users and teams to each configured target (`\\[targets.NAME]`) once.",
    "targets": "One row per configured target: how far it is behind the change feed and what happened last.",
}

HELP = """\
syncd keeps the users and teams of an LLM gateway in step with your identity providers
(Entra ID, Okta, Google Workspace, OneLogin, Keycloak, Auth0): IdPs push through its
SCIM 2.0 endpoint, and pull connectors read groups and members on a schedule. Everything
lands in one store (SQLite by default, PostgreSQL for several replicas) with an audit
trail, and is delivered to the gateway's SCIM endpoint, a change feed and webhooks.
"""

EPILOG = "\n\n".join(
    (
        "Exit codes:",
        "0  success",
        "1  unexpected failure: a bug (SYNCD_DEBUG=1 shows the traceback)",
        "2  bad usage, or a config or store that cannot be used (one line on stderr names the fix)",
        "3  safety stop: removals above a threshold, nothing written, plan kept (syncd runs show ID)",
        "4  IdP or target unreachable or refusing the credentials, or the directory locked by "
        "another run (retrying later may succeed)",
        "5  partial: the IdP read was incomplete; adds and updates applied, nothing removed",
    )
)


def version_line() -> str:
    """What `syncd --version` prints."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"syncd {version('syncd')}"
    except PackageNotFoundError:
        return "syncd (not installed)"


def __getattr__(name: str) -> Any:
    """`app`, the Typer app, built on first use (see the module docstring)."""
    if name == "app":
        from cli.app import build

        globals()["app"] = built = build()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Console entry point: the last boundary, so no traceback reaches a user by accident.
    Listings are offered to `cli.quick` first (served without Typer's pydantic start-up)."""
    try:
        from cli.quick import run

        code = run(sys.argv[1:])
        if code is not None:
            sys.exit(code)
        application = globals().get("app") or __getattr__("app")
        application(prog_name="syncd")
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("SYNCD_DEBUG"):
            raise
        from cli.output import safe

        msg = safe(" ".join(str(exc).split()))
        print(
            f"syncd: internal error: {type(exc).__name__}: {msg}; SYNCD_DEBUG=1 shows the traceback",
            file=sys.stderr,
        )
        sys.exit(EXIT_FAILED)


if __name__ == "__main__":
    main()
