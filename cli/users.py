"""`syncd users list`: users in the store, synced or local."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.context import ConfigOption, JsonOption, directory_scope, open_store, state
from cli.output import Column, emit, note, text, when
from syncd.service.views import list_users
from syncd.store.engine import session_scope

DirectoryOption = Annotated[
    str | None, typer.Option("--directory", "-d", metavar="NAME", help="Only this directory's rows.")
]
LocalOption = Annotated[bool, typer.Option("--local", help="Only local rows (made by hand, no directory).")]
LimitOption = Annotated[int, typer.Option("--limit", "-n", min=1, help="Show at most this many.")]

users = typer.Typer(name="users", help="Users in the store.", no_args_is_help=True)

COLUMNS = (
    Column("user_name", "user name", style="bold"),
    Column("display_name", "display name"),
    Column("email", "email"),
    Column("directory", "directory", fmt=lambda v: v or "local"),
    Column("active", "active", fmt=text),
    Column("external_id", "external id"),
    Column("updated_at", "updated", fmt=when),
    Column("id", "id", style="dim"),
)


def register(app: typer.Typer) -> None:
    app.add_typer(users)


@users.command("list")
def list_cmd(
    ctx: typer.Context,
    directory: DirectoryOption = None,
    local: LocalOption = False,
    inactive: Annotated[bool, typer.Option("--inactive", help="Include deactivated users.")] = False,
    limit: LimitOption = 100,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """List users (active only unless --inactive), by user name."""
    st = state(ctx, config=config, json=json)
    scope = directory_scope(directory, local)
    with open_store(st) as engine, session_scope(engine, write=False) as session:
        rows = list_users(session, directory=scope, include_inactive=inactive, limit=limit + 1)
    emit(rows[:limit], COLUMNS, as_json=st.json, title="users", empty="no users")
    if len(rows) > limit:
        note(f"showing the first {limit} users; raise --limit to see more")
