"""`syncd audit`: the audit trail of changes written by the service layer, newest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from cli.context import ConfigOption, JsonOption, directory_scope, open_store, state
from cli.output import NAME_WIDTH, Column, print_json, shown_of, table, when
from cli.users import AllOption, DirectoryOption, LimitOption, LocalOption
from syncd.config import parse_duration
from syncd.service.views import AuditRow, count_audit, list_audit
from syncd.store.engine import session_scope

COLUMNS = (
    Column("at", "at", fmt=when, wrap=False),
    Column("directory", "directory", fmt=lambda v: v or "local", hide=1),
    Column("actor", "actor", hide=2),
    Column("action", "action", style="bold", wrap=False),
    Column("resource", "resource", wrap=False, max_width=NAME_WIDTH),
    Column("sync_run_id", "run", fmt=lambda v: "" if v is None else str(v), wrap=False),
)


def resource(row: AuditRow) -> str:
    """The resource's name (the action says its type), else its id; `--json` has both."""
    return row.resource_name or row.resource_id


def parse_since(value: str, *, now: datetime | None = None) -> datetime:
    """A duration back from now (`90s`, `30m`, `1h`, `2d`) or an ISO date/time (naive = UTC)."""
    now = now or datetime.now(UTC)
    try:
        return now - timedelta(seconds=parse_duration(value))
    except ValueError:
        pass
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"expected a duration like 1h or 2d, or a date like 2026-11-01, got {value!r}",
            param_hint="--since",
        ) from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


def register(app: typer.Typer) -> None:
    app.command("audit")(audit_cmd)


def audit_cmd(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="WHEN", help="1h, 30m, 2d, or a date/time like 2026-11-01."),
    ] = None,
    directory: DirectoryOption = None,
    local: LocalOption = False,
    limit: LimitOption = 100,
    every: AllOption = False,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Show audit events (who changed what), newest first."""
    st = state(ctx, config=config, json=json)
    start = parse_since(since) if since else None
    scope = directory_scope(directory, local)
    with open_store(st) as engine, session_scope(engine, write=False) as session:
        rows = list_audit(session, since=start, directory=scope, limit=None if every else limit)
        total = (
            len(rows) if every or len(rows) < limit else count_audit(session, since=start, directory=scope)
        )
    if st.json:
        print_json(rows)
    else:
        table(
            [{**vars(r), "resource": resource(r)} for r in rows],
            COLUMNS,
            title="audit",
            empty="no audit events",
        )
    shown_of(len(rows), total, "events (newest first)", more="--all shows every one, --since narrows them")
