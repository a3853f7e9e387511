"""`syncd db upgrade|status`: the store's schema, managed by the Alembic migrations."""

from __future__ import annotations

import typer
from sqlalchemy import Engine

from cli.context import ConfigOption, JsonOption, fail, open_store, settings, sqlite_file, state
from cli.output import kv, print_json
from syncd.store.engine import make_engine, schema_status, upgrade

db = typer.Typer(name="db", help="Create, upgrade and inspect the store's schema.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(db)


@db.command("upgrade")
def upgrade_cmd(ctx: typer.Context, config: ConfigOption = None, json: JsonOption = False) -> None:
    """Create the schema or bring it to this version (idempotent; safe at every start)."""
    from alembic.util.exc import CommandError

    st = state(ctx, config=config, json=json)
    shown = settings(st).store.display_url
    with open_store(st, need_schema=False) as engine:
        before, head = schema_status(engine)
        try:
            upgrade(engine)
        except CommandError as exc:
            fail(f"cannot upgrade the store {shown}: {exc}", "is it from a newer syncd?")
        after, _ = schema_status(engine)
    if st.json:
        print_json({"store": shown, "from": before, "to": after, "head": head})
    elif before == after:
        typer.echo(f"store {shown}: already at {after}")
    else:
        typer.echo(f"store {shown}: upgraded {before or '(empty)'} → {after}")


def _bulk_fk_checks(engine: Engine) -> str:
    """How a pull's bulk membership COPY checks its foreign keys on this store now
    (`syncd.service.pg_fk`), for `db status`."""
    from sqlmodel import Session

    from syncd.service import pg_fk

    with Session(engine) as s:
        why = pg_fk.blocker(s)
    if why is None:
        return "per statement"
    return f"per row: a large first pull loads its memberships about twice as slowly; {why}"


@db.command("status")
def status_cmd(ctx: typer.Context, config: ConfigOption = None, json: JsonOption = False) -> None:
    """Show the store, its schema revision and the revision this syncd needs (exit 2 when the
    schema is missing or out of date). On PostgreSQL, also how a large pull checks its new
    memberships' foreign keys (per statement or per row), and why."""
    st = state(ctx, config=config, json=json)
    s = settings(st)
    db_file = sqlite_file(s.store.url)
    fk_checks = None
    if db_file is not None and not db_file.exists():
        empty = make_engine("sqlite://")  # the head revision, without creating the file
        current, head = schema_status(empty)
        empty.dispose()
    else:
        with open_store(st, need_schema=False) as engine:
            current, head = schema_status(engine)
            if engine.dialect.name == "postgresql" and current == head:
                fk_checks = _bulk_fk_checks(engine)
    row: dict[str, object] = {
        "store": s.store.display_url,
        "current": current,
        "head": head,
        "up_to_date": current == head,
    }
    if fk_checks is not None:
        row["bulk_fk_checks"] = fk_checks
    if st.json:
        print_json(row)
    else:
        rows: list[tuple[str, object]] = [
            ("store", row["store"]),
            ("schema", current or "(none)"),
            ("needs", head),
            ("up to date", current == head),
        ]
        if fk_checks is not None:
            rows.append(("bulk FK checks", fk_checks))
        kv(rows, title="store")
    if current != head:  # exit 2, like every command that needs the schema
        if current is None:
            fail(f"the store {row['store']} has no schema", "run `syncd db upgrade` to create it")
        fail(f"the store schema is at {current}, this syncd needs {head}", "run `syncd db upgrade`")
