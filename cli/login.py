"""`syncd login-sync DIRECTORY USER`: the on-login sync of one user, from the command line.

The same operation as the daemon's `POST /v1/logins`: the user's current groups from the IdP
(within the directory's login_time_budget), missing in-scope teams created, the user's
memberships in that directory made to match; if the IdP fails or is too slow, the stored
teams are shown as stale and nothing is removed.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.context import ConfigOption, JsonOption, fail, open_store, settings, state
from cli.exitcodes import EXIT_UNREACHABLE
from cli.output import console, esc, print_json

EPILOG = (
    "Exit codes: 0 the store now matches the IdP for this user; 2 bad usage, config or store, or "
    "the IdP does not know the user; 4 the IdP failed or was too slow (stale teams shown, nothing "
    "removed)."
)


def register(app: typer.Typer) -> None:
    app.command("login-sync", epilog=EPILOG)(login_sync_cmd)


def login_sync_cmd(
    ctx: typer.Context,
    directory: Annotated[str, typer.Argument(metavar="DIRECTORY", help="A pull directory of the config.")],
    user: Annotated[str, typer.Argument(metavar="USER", help="The user's IdP id, userName or email.")],
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Sync one user's team memberships from the IdP now (what the gateway asks at SSO sign-in)."""
    from syncd.daemon.login import LoginError, LoginService, PushOnly, UnknownDirectory

    st = state(ctx, config=config, json=json)
    s = settings(st)
    with open_store(st) as engine:
        service = LoginService(engine, lambda: s)
        try:
            result = service.sync(directory, user)
        except (UnknownDirectory, PushOnly) as exc:
            known = ", ".join(n for n, d in s.directories.items() if d.kind != "scim") or "none"
            fail(str(exc), f"pull directories configured: {known}")
        except LoginError as exc:
            fail(str(exc))
        finally:
            service.close()
    if st.json:
        print_json(result.to_dict())
    elif result.found or result.stale:
        _show(result, directory)
    if not result.found and not result.stale:
        fail(
            f"{directory} has no user {user!r}: {result.error}",
            "give the user's IdP object id, userName or email as the IdP knows them",
        )
    if result.stale:
        raise typer.Exit(EXIT_UNREACHABLE)


def _show(result: Any, directory: str) -> None:
    out = console()
    if result.stale:
        out.print(f"[yellow]stale:[/] {esc(result.error)}; showing the stored teams, nothing was changed")
    if result.user:
        out.print(f"[bold]{esc(result.user['user_name'])}[/] ({esc(directory)}): {len(result.teams)} teams")
    for t in result.teams:
        out.print(f"  {esc(t['display_name'])}  [dim]{esc(t['source'])}[/]")
    for label, items in (
        ("created team", result.created_teams),
        ("added to", result.added),
        ("removed from", result.removed),
    ):
        for t in items:
            out.print(f"  [cyan]{label}[/] {esc(t['display_name'])}")
    for n in result.notes:
        out.print(f"  [yellow]note:[/] {esc(n)}")
