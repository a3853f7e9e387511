"""`syncd run`, `syncd plan` and `syncd runs`: pull directories into the store, and their history."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy import select

from cli.context import EXIT_FAILED, ConfigOption, JsonOption, fail, open_store, settings, state
from cli.exitcodes import EXIT_OK, EXIT_PARTIAL, EXIT_STOPPED, EXIT_UNREACHABLE, worst
from cli.output import Column, console, emit, print_json, when
from connectors.base import ConnectorError
from connectors.factory import build_connector
from syncd.reconcile.options import run_options
from syncd.reconcile.run import WROTE, RunResult, run_sync
from syncd.store.engine import session_scope
from syncd.store.models import SyncRun

RUN_EPILOG = (
    "Exit codes: 0 applied (or planned, with --dry-run); 1 a run failed (another run of the "
    "directory holds its lock, or a bug); 2 bad usage, config or store; 3 stopped by a safety "
    "threshold: nothing was written, the plan is kept (`syncd runs show ID`), rerun with "
    "--allow-deletes if the removals are intended; 4 the IdP could not be reached or refused the "
    "credentials, nothing was read; 5 partial: the read was cut short, adds and updates were "
    "applied (or planned) and nothing was removed. With several directories the most serious "
    "code wins (1 > 2 > 4 > 3 > 5 > 0)."
)

DirectoriesOption = Annotated[
    list[str] | None,
    typer.Option("--directory", "-d", metavar="NAME", help="Only this pull directory (repeatable)."),
]


def register(app: typer.Typer) -> None:
    app.command("run", epilog=RUN_EPILOG)(run_cmd)
    app.command("plan", epilog=RUN_EPILOG)(plan_cmd)
    app.add_typer(runs)


def run_cmd(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="Pull each directory once and exit (cron/timer mode).")
    ] = False,
    directory: DirectoriesOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan; write nothing.")] = False,
    allow_deletes: Annotated[
        bool, typer.Option("--allow-deletes", help="Let removals above the safety thresholds through.")
    ] = False,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Run the daemon (schedules, SCIM endpoint, admin API), or pull once with --once.

    With --once every configured pull directory (or those named) is read one time:
    fetch → diff → safety checks → apply, with a summary of what changed.
    """
    st = state(ctx, config=config, json=json)
    if not once:
        if dry_run or allow_deletes or directory:
            fail("--dry-run, --allow-deletes and --directory need --once", "add --once, or use `syncd plan`")
        from syncd.daemon.main import run_daemon

        raise typer.Exit(run_daemon(settings(st)))
    raise typer.Exit(_pull(st, directory, dry_run=dry_run, allow_deletes=allow_deletes, trigger="cli"))


def plan_cmd(
    ctx: typer.Context,
    directory: DirectoriesOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Show exactly the changes a run would apply now (same as `run --once --dry-run`)."""
    st = state(ctx, config=config, json=json)
    raise typer.Exit(_pull(st, directory, dry_run=True, allow_deletes=False, trigger="plan"))


def _pull(st: Any, only: list[str] | None, *, dry_run: bool, allow_deletes: bool, trigger: str) -> int:
    s = settings(st)
    pulls = {n: d for n, d in s.directories.items() if d.kind != "scim"}
    if only:
        unknown = [n for n in only if n not in s.directories]
        if unknown:
            fail(
                f"no directory named {', '.join(unknown)}",
                f"configured: {', '.join(s.directories) or 'none'}",
            )
        push = [n for n in only if n not in pulls]
        if push:
            fail(
                f"{', '.join(push)} is push-only (kind scim)",
                "its IdP writes through /scim/v2; nothing to pull",
            )
        pulls = {n: pulls[n] for n in only}
    if not pulls:
        fail("no pull directories configured", "add a [directories.NAME] table of kind graph, okta or google")
    results: list[RunResult] = []
    with open_store(st) as engine:
        for name, d in pulls.items():
            try:
                conn = build_connector(name, d)
            except ConnectorError as exc:
                fail(f"directory {name}: {exc}", "fix its settings; `syncd config check` validates the file")
            opts = run_options(
                d, trigger=trigger, dry_run=dry_run, allow_deletes=allow_deletes, lock_dir=s.state_dir
            )
            results.append(_one(engine, conn, opts, quiet=st.json))
    if st.json:
        print_json([r.to_dict() for r in results])
    else:
        for r in results:
            _show(r, dry_run)
    return worst([exit_code(r) for r in results])


def exit_code(r: RunResult) -> int:
    """The exit code of one directory's run (see `cli.exitcodes`)."""
    if r.outcome == "failed" and r.unreachable:
        return EXIT_UNREACHABLE
    if r.outcome in ("failed", "busy"):
        return EXIT_FAILED
    if r.outcome == "stopped":
        return EXIT_STOPPED
    if r.outcome == "partial" or not r.complete:
        return EXIT_PARTIAL
    return EXIT_OK


def _one(engine: Any, conn: Any, opts: Any, *, quiet: bool) -> RunResult:
    if quiet:
        return run_sync(engine, conn, opts)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console(err=True),
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def on_fetch(phase: str, count: int) -> None:
        key = f"fetch:{phase}"
        if key not in tasks:
            tasks[key] = progress.add_task(f"{conn.directory}: reading {phase}", total=None)
        progress.update(tasks[key], completed=count)

    def on_apply(phase: str, done: int, total: int) -> None:
        key = f"apply:{phase}"
        if key not in tasks:
            tasks[key] = progress.add_task(f"{conn.directory}: writing {phase}", total=total)
        progress.update(tasks[key], completed=done, total=total)

    with progress:
        return run_sync(engine, conn, opts, on_fetch=on_fetch, on_apply=on_apply)


def _show(r: RunResult, dry_run: bool) -> None:
    from rich.table import Table

    out = console()
    head = {
        "applied": "[green]applied[/]",
        "partial": "[yellow]partial: the read was cut short; adds and updates applied, nothing removed[/]",
        "planned": "[cyan]planned (dry run: nothing written)[/]",
        "stopped": "[yellow]stopped by safety threshold: nothing written[/]",
        "failed": "[red]failed[/]",
        "busy": "[red]skipped: another run holds the lock[/]",
    }[r.outcome]
    cut = not r.complete and r.outcome != "partial"
    extra = " [yellow](snapshot incomplete: removals skipped)[/]" if cut else ""
    out.print(
        f"[bold]{r.directory}[/] run {r.run_id or '-'}: {head}{extra} — {r.mode} read, "
        f"{r.api_calls} API calls, {r.throttles} throttled, {r.seconds:.1f}s"
    )
    planned = r.plan.counts() if r.plan else {}
    if planned or r.applied:
        t = Table("change", "planned", "applied", box=None, pad_edge=False)
        for kind in sorted(set(planned) | set(r.applied)):
            t.add_row(
                kind.replace("_", " "),
                str(planned.get(kind, 0)),
                "-" if dry_run or r.outcome not in WROTE else str(r.applied.get(kind, 0)),
            )
        out.print(t)
    elif r.outcome in ("applied", "partial", "planned"):
        out.print("  no changes: the store matches the IdP")
    for n in r.notes[:20]:
        out.print(f"  [yellow]note:[/] {escape(n)}")
    if r.error and r.outcome != "partial":  # a partial run's error is its first note
        out.print(f"  [red]{r.error}[/]")


runs = typer.Typer(name="runs", help="Sync run history.", no_args_is_help=False, invoke_without_command=True)

RUN_COLUMNS = (
    Column("id", "run", style="bold"),
    Column("directory", "directory"),
    Column("trigger", "trigger"),
    Column("mode", "mode"),
    Column("outcome", "outcome"),
    Column("started_at", "started", fmt=when),
    Column("seconds", "seconds"),
    Column("changes", "changes"),
    Column("api_calls", "API calls"),
    Column("error", "error"),
)


def _row(r: SyncRun) -> dict[str, Any]:
    secs = (r.ended_at - r.started_at).total_seconds() if r.ended_at else None
    return {
        "id": r.id,
        "directory": r.directory,
        "trigger": r.trigger,
        "mode": r.mode,
        "outcome": r.outcome,
        "started_at": r.started_at,
        "ended_at": r.ended_at,
        "seconds": round(secs, 1) if secs is not None else None,
        "changes": ", ".join(f"{k}={v}" for k, v in sorted(r.counts.items())) or "-",
        "counts": r.counts,
        "api_calls": r.api_calls,
        "throttles": r.throttles,
        "dry_run": r.dry_run,
        "error": r.error,
    }


@runs.callback()
def runs_list(
    ctx: typer.Context,
    directory: Annotated[str | None, typer.Option("--directory", "-d", metavar="NAME")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1)] = 20,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """List recent sync runs, newest first (`syncd runs show ID` for one run and its plan)."""
    if ctx.invoked_subcommand:
        return
    st = state(ctx, config=config, json=json)
    with open_store(st) as engine, session_scope(engine, write=False) as s:
        q = select(SyncRun).order_by(SyncRun.id.desc()).limit(limit)  # type: ignore[union-attr]
        if directory:
            q = q.where(SyncRun.directory == directory)
        rows = [_row(r) for r in s.execute(q).scalars()]
    emit(rows, RUN_COLUMNS, as_json=st.json, title="sync runs", empty="no sync runs yet")


@runs.command("show")
def runs_show(
    ctx: typer.Context,
    run_id: Annotated[int, typer.Argument(metavar="ID")],
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """One sync run, with its kept plan (dry runs and safety stops keep theirs)."""
    st = state(ctx, config=config, json=json)
    with open_store(st) as engine, session_scope(engine, write=False) as s:
        r = s.get(SyncRun, run_id)
        if r is None:
            fail(f"no sync run {run_id}", "`syncd runs` lists them")
        data = {**_row(r), "plan": r.plan}
    if st.json:
        print_json(data)
        return
    emit([data], RUN_COLUMNS, as_json=False, title=f"sync run {run_id}")
    plan = data["plan"] or {}
    for n in plan.get("notes", [])[:50]:
        console().print(f"note: {escape(n)}")
    if "counts" in plan:
        console().print(f"kept plan: {plan['counts']}")
        for kind in ("users", "teams", "members"):
            for ch in plan[kind][:50]:
                label = ch.get("user_name") or ch.get("display_name") or ch.get("team_external_id")
                size = f" ({len(ch['user_external_ids'])} users)" if "user_external_ids" in ch else ""
                console().print(f"  {ch['kind']}: {label}{size}")
