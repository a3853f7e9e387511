"""`syncd users list|show`: users in the store, synced or local."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from cli.context import ConfigOption, JsonOption, directory_scope, fail, open_store, state
from cli.listings import show_users
from cli.output import Column, console, kv, print_json, table, when

if TYPE_CHECKING:
    pass

DirectoryOption = Annotated[
    str | None, typer.Option("--directory", "-d", metavar="NAME", help="Only this directory's rows.")
]
LocalOption = Annotated[bool, typer.Option("--local", help="Only local rows (made by hand, no directory).")]
LimitOption = Annotated[int, typer.Option("--limit", "-n", min=1, help="Show at most this many.")]
AllOption = Annotated[bool, typer.Option("--all", help="Show every one (no --limit).")]

users = typer.Typer(name="users", help="Users in the store.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(users)


@users.command("list")
def list_cmd(
    ctx: typer.Context,
    directory: DirectoryOption = None,
    local: LocalOption = False,
    inactive: Annotated[bool, typer.Option("--inactive", help="Include deactivated users.")] = False,
    limit: LimitOption = 100,
    every: AllOption = False,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """List users (active only unless --inactive), by user name."""
    from cli import fastread

    st = state(ctx, config=config, json=json)
    scope = directory_scope(directory, local)
    n = None if every else limit
    fast = fastread.list_users(
        st.config, directory=directory, local=local, include_inactive=inactive, limit=n
    )
    if fast is not None:
        rows, total = fast
    else:
        from syncd.service.views import count_users, list_users
        from syncd.store.engine import session_scope

        with open_store(st) as engine, session_scope(engine, write=False) as session:
            rows = list_users(session, directory=scope, include_inactive=inactive, limit=n)
            total = (
                len(rows)
                if every or len(rows) < limit
                else count_users(session, directory=scope, include_inactive=inactive)
            )
    show_users(rows, total, inactive=inactive, as_json=st.json)


@users.command("show")
def show_cmd(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(metavar="USER", help="A user name (any case) or a user id.")],
    directory: DirectoryOption = None,
    local: LocalOption = False,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """One user: attributes, emails, and every team with the source of the membership."""
    from syncd.service.details import find_users
    from syncd.store.engine import session_scope

    st = state(ctx, config=config, json=json)
    scope = directory_scope(directory, local)
    with open_store(st) as engine, session_scope(engine, write=False) as session:
        found = find_users(session, user=user, directory=scope)
    if not found:
        fail(
            f"no user {user!r}" + (f" in directory {directory}" if directory else ""),
            "`syncd users list` lists them",
        )
    if len(found) > 1:
        where = ", ".join(sorted(d.user.directory or "local" for d in found))
        fail(f"{user!r} names users in several directories ({where})", "add --directory NAME or --local")
    (d,) = found
    if st.json:
        print_json(d)
        return
    u = d.user
    kv(
        [
            ("user name", u.user_name),
            ("display name", u.display_name),
            ("given name", d.given_name),
            ("family name", d.family_name),
            ("emails", ", ".join(d.emails) or None),
            ("directory", u.directory or "local"),
            ("active", u.active),
            ("external id", u.external_id),
            ("id", u.id),
            ("version", u.version),
            ("created", when(u.created_at)),
            ("updated", when(u.updated_at)),
        ],
        title=f"user {u.user_name}",
    )
    console().print()
    table(
        [
            {
                "team": t.display_name + (" (archived)" if t.archived else ""),
                "directory": t.directory or "local",
                "source": t.source,
                "since": t.since,
            }
            for t in d.teams
        ],
        (
            Column("team", "team", style="bold"),
            Column("directory", "directory"),
            Column("source", "source", wrap=False),
            Column("since", "since", fmt=when, wrap=False),
        ),
        title=f"teams of {u.user_name} ({len(d.teams)})",
        empty="member of no team",
    )
