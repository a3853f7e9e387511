"""`syncd db upgrade|status`: the store's schema, managed by the Alembic migrations."""

from __future__ import annotations

import typer

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


@db.command("status")
def status_cmd(ctx: typer.Context, config: ConfigOption = None, json: JsonOption = False) -> None:
    """Show the store, its schema revision and the revision this syncd needs (exit 2 when the
    schema is missing or out of date)."""
    st = state(ctx, config=config, json=json)
    s = settings(st)
    db_file = sqlite_file(s.store.url)
    if db_file is not None and not db_file.exists():
        empty = make_engine("sqlite://")  # the head revision, without creating the file
        current, head = schema_status(empty)
        empty.dispose()
    else:
        with open_store(st, need_schema=False) as engine:
            current, head = schema_status(engine)
    row = {"store": s.store.display_url, "current": current, "head": head, "up_to_date": current == head}
    if st.json:
        print_json(row)
    else:
        kv(
            [
                ("store", row["store"]),
                ("schema", current or "(none)"),
                ("needs", head),
                ("up to date", current == head),
            ],
            title="store",
        )
    if current != head:  # exit 2, like every command that needs the schema
        if current is None:
            fail(f"the store {row['store']} has no schema", "run `syncd db upgrade` to create it")
        fail(f"the store schema is at {current}, this syncd needs {head}", "run `syncd db upgrade`")
