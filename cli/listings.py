"""What `syncd users list` and `syncd teams list` print, shared by their Typer commands and by
`cli.quick` (which serves them without Typer): the columns, the table or JSON, and the
"showing N of TOTAL" note. Imports neither Typer nor the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cli.output import NAME_WIDTH, Column, emit, print_json, shown_of, table, text, when

if TYPE_CHECKING:
    from syncd.service.rows import TeamRow, UserRow


def _email(row: Any) -> str:
    """The email when it says something the user name does not."""
    email = row.email or ""
    return "" if email.casefold() == row.user_name.casefold() else email


def user_columns(rows: list[Any], *, inactive: bool) -> tuple[Column, ...]:
    """The list's columns: email only when some row's differs from its user name, active only
    when inactive users are listed. Ids and timestamps are in `users show` and `--json`."""
    cols = [
        Column("user_name", "user name", style="bold", wrap=False, max_width=NAME_WIDTH),
        Column("display_name", "display name"),
    ]
    if any(_email(r) for r in rows):
        cols.append(Column("email", "email"))
    cols.append(Column("directory", "directory", fmt=lambda v: v or "local"))
    if inactive:
        cols.append(Column("active", "active", fmt=text, wrap=False))
    return tuple(cols)


def show_users(rows: list[UserRow], total: int, *, inactive: bool, as_json: bool) -> None:
    """The listing's output: a table or JSON on stdout, "showing N of TOTAL" on stderr."""
    if as_json:
        print_json(rows)
    else:
        rows_shown = [{**vars(r), "email": _email(r)} for r in rows]
        table(
            rows_shown, user_columns(rows, inactive=inactive) if rows else (), title="users", empty="no users"
        )
    shown_of(len(rows), total, "users")


TEAM_COLUMNS = (
    Column("display_name", "team", style="bold", wrap=False, max_width=NAME_WIDTH),
    Column("directory", "directory", fmt=lambda v: v or "local"),
    Column("member_count", "members", wrap=False),
    Column("updated_at", "updated", fmt=when, wrap=False),
)
MEMBERS = Column("members", "member user names", fmt=lambda v: ", ".join(v or ()))


def show_teams(rows: list[TeamRow], total: int, *, members: bool, as_json: bool) -> None:
    """The listing's output: a table or JSON on stdout, "showing N of TOTAL" on stderr."""
    if as_json:
        print_json([{k: v for k, v in vars(r).items() if members or k != "members"} for r in rows])
    else:
        emit(
            rows,
            (*TEAM_COLUMNS[:3], MEMBERS) if members else TEAM_COLUMNS,
            as_json=False,
            title="teams",
            empty="no teams",
        )
    shown_of(len(rows), total, "teams")
