"""`syncd run`, `syncd plan` and `syncd runs`: pull directories into the store, and their history."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from cli.context import ConfigOption, JsonOption, fail, open_store, settings, state
from cli.exitcodes import EXIT_OK, EXIT_PARTIAL, EXIT_UNREACHABLE, for_run, worst
from cli.output import console, esc, print_json
from cli.planview import PLAN_LINES, show_plan
from connectors.base import ConnectorError
from connectors.factory import build_connector
from syncd.reconcile.options import run_options
from syncd.reconcile.run import RunResult, run_sync

RUN_EPILOG = (
    "Exit codes: 0 applied (or planned, with --dry-run); 1 a bug; 2 bad usage, config or store; "
    "3 stopped by a safety threshold: nothing was written, the plan is kept: review it with "
    "`syncd runs show ID` and apply it with `syncd runs approve ID`, or rerun with --allow-deletes "
    "if the removals are intended; 4 an IdP unreachable or refusing the credentials, or another "
    "run of the directory holds its lock; 5 partial: the IdP read was incomplete, adds and updates "
    "applied, nothing removed."
)

AllChanges = Annotated[bool, typer.Option("--all", help="Show every change of the plan, not the first 40.")]
DirectoriesOption = Annotated[
    list[str] | None,
    typer.Option("--directory", "-d", metavar="NAME", help="Only this pull directory (repeatable)."),
]


def register(app: typer.Typer) -> None:
    app.command("run", epilog=RUN_EPILOG)(run_cmd)
    app.command("plan", epilog=RUN_EPILOG)(plan_cmd)


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
    every: AllChanges = False,
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
        from cli.serve import listen_socket
        from syncd.daemon.main import run_daemon

        server = settings(st).server
        listen_socket(server.listen).close()  # a taken port: one line and exit 2
        if not server.shared_listener:
            listen_socket(server.admin_listen, option="[server] admin_listen").close()
        raise typer.Exit(run_daemon(settings(st)))
    raise typer.Exit(
        _pull(st, directory, dry_run=dry_run, allow_deletes=allow_deletes, trigger="cli", every=every)
    )


def plan_cmd(
    ctx: typer.Context,
    directory: DirectoriesOption = None,
    every: AllChanges = False,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Show exactly the changes a run would apply now (same as `run --once --dry-run`).

    With --json, every change with its names and ids (the serialised plan)."""
    st = state(ctx, config=config, json=json)
    raise typer.Exit(_pull(st, directory, dry_run=True, allow_deletes=False, trigger="plan", every=every))


def result_dict(r: RunResult) -> dict[str, Any]:
    """A run's JSON: its summary, and for a dry run or a safety stop every planned change."""
    data = r.to_dict()
    if r.plan is not None and r.outcome in ("planned", "stopped"):
        data["plan"] = r.plan.to_dict()
    return data


def _pull(
    st: Any, only: list[str] | None, *, dry_run: bool, allow_deletes: bool, trigger: str, every: bool = False
) -> int:
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
        print_json([result_dict(r) for r in results])
    else:
        for r in results:
            show_result(r, dry_run=dry_run, limit=None if every else PLAN_LINES)
    return worst([exit_code(r) for r in results])


def exit_code(r: RunResult) -> int:
    """The exit code of one directory's run (see `cli.exitcodes`): a dry run of an incomplete read
    is partial too."""
    if r.outcome == "failed" and r.unreachable:
        return EXIT_UNREACHABLE
    code = for_run(r.outcome, r.failure)
    return EXIT_PARTIAL if code == EXIT_OK and not r.complete else code


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


def show_result(r: RunResult, *, dry_run: bool, limit: int | None = PLAN_LINES) -> None:
    """A run's outcome line; for a dry run or a safety stop its plan, line by line; for an
    applied run the planned and applied counts."""
    from rich.table import Table

    out = console()
    head = {
        "applied": "[green]applied[/]",
        "planned": "[cyan]planned (dry run: nothing written)[/]",
        "stopped": "[yellow]stopped by safety threshold: nothing written[/]",
        "failed": "[red]failed[/]",
        "busy": "[red]skipped: another run holds the lock[/]",
    }.get(r.outcome, esc(r.outcome))
    cut = not r.complete and r.outcome != "partial"
    extra = " [yellow](snapshot incomplete: removals skipped)[/]" if cut else ""
    out.print(
        f"[bold]{esc(r.directory)}[/] run {r.run_id or '-'}: {head}{extra} — {r.mode} read, "
        f"{r.api_calls} API calls, {r.throttles} throttled, {r.seconds:.1f}s"
    )
    if r.plan is not None and r.outcome in ("planned", "stopped"):
        if r.plan.empty and not r.plan.notes:
            out.print("  no changes: the store matches the IdP")
        else:
            show_plan(r.plan.to_dict(), limit=limit, out=out)
    else:
        planned = r.plan.counts() if r.plan else {}
        if planned or r.applied:
            t = Table("change", "planned", "applied", box=None, pad_edge=False)
            for kind in sorted(set(planned) | set(r.applied)):
                t.add_row(
                    kind.replace("_", " "),
                    str(planned.get(kind, 0)),
                    "-" if dry_run or r.outcome in ("planned", "stopped") else str(r.applied.get(kind, 0)),
                )
            out.print(t)
        elif r.outcome in ("applied", "partial"):
            out.print("  no changes: the store matches the IdP")
        for n in r.notes[:20]:
            out.print(f"  [yellow]note:[/] {esc(n)}")
    if r.error and r.outcome != "partial":  # a partial run's error is its first note
        out.print(f"  [red]{esc(r.error)}[/]")


def _show(r: RunResult, dry_run: bool) -> None:
    """`show_result` under the name `cli.demo` imports."""
    show_result(r, dry_run=dry_run)
