"""`syncd teams list`: teams in the store, optionally with their members' user names."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.context import ConfigOption, JsonOption, directory_scope, open_store, state
from cli.output import Column, emit, note, when
from cli.users import DirectoryOption, LimitOption, LocalOption
from syncd.service.views import list_teams
from syncd.store.engine import session_scope

teams = typer.Typer(name="teams", help="Teams (SCIM groups) in the store.", no_args_is_help=True)

COLUMNS = (
    Column("display_name", "team", style="bold"),
    Column("directory", "directory", fmt=lambda v: v or "local"),
    Column("member_count", "members"),
    Column("external_id", "external id"),
    Column("updated_at", "updated", fmt=when),
    Column("id", "id", style="dim"),
)
MEMBERS = Column("members", "member user names", fmt=lambda v: ", ".join(v or ()))


def register(app: typer.Typer) -> None:
    app.add_typer(teams)


@teams.command("list")
def list_cmd(
    ctx: typer.Context,
    directory: DirectoryOption = None,
    local: LocalOption = False,
    members: Annotated[bool, typer.Option("--members", help="Show each team's member user names.")] = False,
    limit: LimitOption = 100,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """List teams by name, with member counts (and names with --members)."""
    st = state(ctx, config=config, json=json)
    scope = directory_scope(directory, local)
    with open_store(st) as engine, session_scope(engine, write=False) as session:
        rows = list_teams(session, directory=scope, with_members=members, limit=limit + 1)
    shown = rows[:limit]
    if st.json:
        data = [{k: v for k, v in vars(r).items() if members or k != "members"} for r in shown]
        emit(data, COLUMNS, as_json=True)
    else:
        emit(
            shown,
            (*COLUMNS[:3], MEMBERS) if members else COLUMNS,
            as_json=False,
            title="teams",
            empty="no teams",
        )
    if len(rows) > limit:
        note(f"showing the first {limit} teams; raise --limit to see more")
