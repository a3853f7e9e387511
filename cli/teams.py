"""`syncd teams list|show`: teams in the store, with their members' user names on request."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from cli.context import ConfigOption, JsonOption, directory_scope, fail, open_store, state
from cli.listings import show_teams
from cli.output import NAME_WIDTH, Column, console, kv, print_json, shown_of, table, text, when
from cli.users import AllOption, DirectoryOption, LimitOption, LocalOption

if TYPE_CHECKING:
    pass

teams = typer.Typer(name="teams", help="Teams (SCIM groups) in the store.", no_args_is_help=True)

MEMBER_COLUMNS = (
    Column("user_name", "user name", style="bold", wrap=False, max_width=NAME_WIDTH),
    Column("display_name", "display name"),
    Column("active", "active", fmt=text, wrap=False),
    Column("source", "source", wrap=False),
    Column("since", "since", fmt=when, wrap=False),
)


def register(app: typer.Typer) -> None:
    app.add_typer(teams)


@teams.command("list")
def list_cmd(
    ctx: typer.Context,
    directory: DirectoryOption = None,
    local: LocalOption = False,
    members: Annotated[bool, typer.Option("--members", help="Show each team's member user names.")] = False,
    limit: LimitOption = 100,
    every: AllOption = False,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """List teams by name, with member counts (and names with --members)."""
    from cli import fastread

    st = state(ctx, config=config, json=json)
    scope = directory_scope(directory, local)
    n = None if every else limit
    fast = fastread.list_teams(st.config, directory=directory, local=local, with_members=members, limit=n)
    if fast is not None:
        rows, total = fast
    else:
        from syncd.service.views import count_teams, list_teams
        from syncd.store.engine import session_scope

        with open_store(st) as engine, session_scope(engine, write=False) as session:
            rows = list_teams(session, directory=scope, with_members=members, limit=n)
            total = len(rows) if every or len(rows) < limit else count_teams(session, directory=scope)
    show_teams(rows, total, members=members, as_json=st.json)


@teams.command("show")
def show_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="A team's name (any case) or its id.")],
    directory: DirectoryOption = None,
    local: LocalOption = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Show at most this many members.")] = 50,
    every: AllOption = False,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """One team: its attributes and its members, with the source of each membership."""
    from syncd.service.details import find_teams
    from syncd.store.engine import session_scope

    st = state(ctx, config=config, json=json)
    scope = directory_scope(directory, local)
    with open_store(st) as engine, session_scope(engine, write=False) as session:
        found = find_teams(session, team=name, directory=scope, member_limit=None if every else limit)
    if not found:
        fail(
            f"no team {name!r}" + (f" in directory {directory}" if directory else ""),
            "`syncd teams list` lists them",
        )
    if len(found) > 1:
        where = ", ".join(sorted(t.directory or "local" for t in found))
        fail(f"{name!r} names teams in several directories ({where})", "add --directory NAME or --local")
    (t,) = found
    if st.json:
        print_json(t)
        shown_of(len(t.members), t.member_count, "members")
        return
    kv(
        [
            ("team", t.display_name),
            ("directory", t.directory or "local"),
            ("archived", t.archived),
            ("members", t.member_count),
            ("by source", ", ".join(f"{k} {v}" for k, v in t.sources.items()) or None),
            ("external id", t.external_id),
            ("id", t.id),
            ("version", t.version),
            ("created", when(t.created_at)),
            ("updated", when(t.updated_at)),
        ],
        title=f"team {t.display_name}",
    )
    console().print()
    table(t.members, MEMBER_COLUMNS, title=f"members ({t.member_count})", empty="no members")
    shown_of(len(t.members), t.member_count, "members")
