"""`syncd demo`: sync three bundled fake IdP tenants into the embedded SQLite store and show them."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select

from cli.context import EXIT_FAILED, JsonOption, fail, state
from cli.output import console, print_json
from cli.sync import _one, _show
from connectors.factory import build_connector
from syncd.config import ConfigError, load_config
from syncd.reconcile.options import run_options
from syncd.store.engine import make_engine, session_scope, upgrade
from syncd.store.models import Team


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)


def demo_cmd(
    ctx: typer.Context,
    state_dir: Annotated[
        Path, typer.Option("--state-dir", metavar="DIR", help="Where the demo config and SQLite store go.")
    ] = Path("demo-state"),
    users: Annotated[int, typer.Option(min=1, help="Users per fake tenant.")] = 600,
    groups: Annotated[int, typer.Option(min=1, help="Groups per fake tenant.")] = 40,
    keep_running: Annotated[
        bool,
        typer.Option("--keep-running", help="Keep the fake IdPs up (Ctrl-C stops) to try other commands."),
    ] = False,
    json: JsonOption = False,
) -> None:
    """Sync three bundled fake IdP tenants into a SQLite store and show the teams.

    Starts fake Entra ID (Graph), Okta and Google Workspace tenants on 127.0.0.1, writes a
    config for them under --state-dir, runs one sync of each and shows the largest teams.
    """
    from connectors.testing.demo import DemoSize, start_fakes

    st = state(ctx, json=json)
    with ExitStack() as stack:
        text = start_fakes(stack, state_dir, DemoSize(users, groups, min(30, users)))
        cfg = state_dir / "config.toml"
        cfg.write_text(text)
        cfg.chmod(0o600)
        try:
            settings = load_config(cfg)
        except ConfigError as exc:
            fail(f"demo config is invalid: {exc}", "this is a bug in syncd demo")
        engine = make_engine(settings.store.url)
        upgrade(engine)
        results = []
        for name, d in settings.directories.items():
            # the fakes listen on new ports each time, so cursors (absolute delta links) would be stale
            opts = run_options(d, trigger="demo", lock_dir=settings.state_dir, use_cursor=False)
            results.append(_one(engine, build_connector(name, d), opts, quiet=st.json))
        with session_scope(engine, write=False) as s:
            teams = s.execute(
                select(Team.directory, Team.display_name, Team.member_count)
                .order_by(Team.member_count.desc(), Team.display_name)  # type: ignore[attr-defined]
                .limit(15)
            ).all()
        from cli.push import demo_delivery

        deliveries, show_delivery = demo_delivery(stack, state_dir, engine, quiet=st.json)
        engine.dispose()
        if st.json:
            print_json(
                {
                    "config": str(cfg),
                    "runs": [r.to_dict() for r in results],
                    "delivery": [r.to_dict() for r in deliveries],
                    "largest_teams": [
                        dict(zip(("directory", "team", "members"), t, strict=True)) for t in teams
                    ],
                }
            )
        else:
            _report(results, teams, cfg)
            show_delivery()
        if any(r.outcome != "applied" for r in results + deliveries):
            raise typer.Exit(EXIT_FAILED)
        if keep_running:
            console().print("[dim]fake IdPs running; Ctrl-C stops them[/]")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass


def _report(results, teams, cfg: Path) -> None:  # type: ignore[no-untyped-def]
    from rich.table import Table

    out = console()
    for r in results:
        _show(r, dry_run=False)
    t = Table("directory", "team", "members", title="largest teams")
    for d, name, n in teams:
        t.add_row(d, name, str(n))
    out.print(t)
    out.print(
        f"\nTry: [bold]syncd --config {cfg} teams list --members[/], "
        f"[bold]syncd --config {cfg} runs[/], [bold]syncd --config {cfg} audit --since 1h[/]"
    )
