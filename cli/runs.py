"""`syncd runs [show ID | approve ID]`: sync run history, kept plans, and approving a stopped one.

JSON carries real values: timestamps in UTC with their offset, `counts` as an object, the kept
plan in its serialised form (`syncd.reconcile.plan`). Tables and plans are for people.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.text import Text

from cli.context import ConfigOption, JsonOption, fail, open_store, settings, state
from cli.exitcodes import EXIT_FAILED, EXIT_UNREACHABLE
from cli.output import Column, console, kv, print_json, safe, shown_of, table, utc, when
from cli.planview import PLAN_LINES, show_plan
from syncd.store.engine import session_scope

runs = typer.Typer(name="runs", help="Sync run history.", no_args_is_help=False, invoke_without_command=True)

RUN_COLUMNS = (
    Column("id", "run", style="bold", wrap=False),
    Column("directory", "directory"),
    Column("trigger", "trigger", wrap=False, hide=1),
    Column("outcome", "outcome", wrap=False),
    Column("started_at", "started", fmt=when, wrap=False),
    Column("seconds", "secs", fmt=lambda v: "" if v is None else f"{v:g}", wrap=False, hide=2),
    Column("counts", "changes", fmt=lambda c: short_counts(c, keep="\u00a0")),
)
_SHORT = (
    ("create_user", "+", "users"),
    ("reactivate_user", "+", "reactivated"),
    ("update_user", "~", "users"),
    ("deactivate_user", "!", "deactivated"),
    ("create_team", "+", "teams"),
    ("restore_team", "+", "restored"),
    ("rename_team", "~", "renamed"),
    ("archive_team", "!", "archived"),
    ("add_members", "+", "members"),
    ("remove_members", "-", "members"),
)


def short_counts(counts: dict[str, int], *, keep: str = " ") -> str:
    """`+30 users, +6 teams, -4 members, !2 deactivated`; "-" for none. `keep` joins each
    count to its noun (a no-break space keeps them on one line in a table)."""
    known = [f"{sign}{counts[k]:,}{keep}{noun}" for k, sign, noun in _SHORT if counts.get(k)]
    other = [f"{k}{keep}{v}" for k, v in sorted(counts.items()) if v and k not in {s[0] for s in _SHORT}]
    return ", ".join(known + other) or "-"


AllChanges = Annotated[bool, typer.Option("--all", help="Show every change of the plan.")]


def register(app: typer.Typer) -> None:
    app.add_typer(runs)


def run_dict(r: Any) -> dict[str, Any]:
    """One sync run as plain values (no display strings)."""
    started = utc(r.started_at)
    ended = utc(r.ended_at) if r.ended_at else None
    return {
        "id": r.id,
        "directory": r.directory,
        "trigger": r.trigger,
        "mode": r.mode,
        "outcome": r.outcome,
        "started_at": started,
        "ended_at": ended,
        "seconds": round((ended - started).total_seconds(), 1) if ended else None,
        "counts": dict(r.counts or {}),
        "api_calls": r.api_calls,
        "throttles": r.throttles,
        "dry_run": r.dry_run,
        "error": r.error,
    }


@runs.callback()
def runs_list(
    ctx: typer.Context,
    directory: Annotated[str | None, typer.Option("--directory", "-d", metavar="NAME")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Show at most this many.")] = 20,
    every: Annotated[bool, typer.Option("--all", help="Show every run (no --limit).")] = False,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """List recent sync runs, newest first (`syncd runs show ID` for one run and its plan)."""
    if ctx.invoked_subcommand:
        return
    from sqlalchemy import func, select

    from syncd.store.models import SyncRun

    st = state(ctx, config=config, json=json)
    with open_store(st) as engine, session_scope(engine, write=False) as s:
        q = select(SyncRun).order_by(SyncRun.id.desc())  # type: ignore[union-attr]
        n = select(func.count()).select_from(SyncRun)
        if directory:
            q, n = q.where(SyncRun.directory == directory), n.where(SyncRun.directory == directory)
        rows = [run_dict(r) for r in s.execute(q if every else q.limit(limit)).scalars()]
        total = len(rows) if every or len(rows) < limit else s.execute(n).scalar_one()
    if st.json:
        print_json(rows)
    else:
        table(rows, RUN_COLUMNS, title="sync runs", empty="no sync runs yet")
    shown_of(len(rows), total, "runs")


@runs.command("show")
def runs_show(
    ctx: typer.Context,
    run_id: Annotated[int, typer.Argument(metavar="ID")],
    every: AllChanges = False,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """One sync run, with its kept plan (dry runs and safety stops keep theirs)."""
    from syncd.store.models import SyncRun

    st = state(ctx, config=config, json=json)
    with open_store(st) as engine, session_scope(engine, write=False) as s:
        r = s.get(SyncRun, run_id)
        if r is None:
            fail(f"no sync run {run_id}", "`syncd runs` lists them")
        data = {**run_dict(r), "plan": r.plan}
    if st.json:
        print_json(data)
        return
    kv(
        [
            ("directory", data["directory"]),
            ("outcome", data["outcome"]),
            ("trigger", data["trigger"]),
            ("mode", data["mode"]),
            ("started", when(data["started_at"])),
            ("seconds", data["seconds"]),
            ("changes", ", ".join(f"{k} {v}" for k, v in sorted(data["counts"].items())) or None),
            ("API calls", data["api_calls"]),
            ("error", data["error"]),
        ],
        title=f"sync run {run_id}",
    )
    plan = data["plan"]
    if plan and "counts" not in plan:  # an applied or partial run keeps only its notes
        for note in plan.get("notes") or ():
            console().print(Text("note: ", style="yellow") + Text(safe(note)))
    elif plan:
        console().print()
        show_plan(plan, limit=None if every else PLAN_LINES)
        _next_step(run_id, data["outcome"], plan)


def _next_step(run_id: int, outcome: str, plan: dict[str, Any]) -> None:
    from rich.text import Text

    out = console()
    if plan.get("approves_run"):
        out.print(Text(f"  this run applied the kept plan of run {plan['approves_run']}", style="dim"))
    elif plan.get("approved_by_run"):
        out.print(Text(f"  approved and applied by run {plan['approved_by_run']}", style="dim"))
    elif outcome == "stopped":
        out.print(Text(f"  apply it with `syncd runs approve {run_id}`", style="bold"))


@contextmanager
def _progress() -> Iterator[Callable[[str, int, int], None]]:
    """A transient progress bar on stderr, one task per apply phase (users, teams, members)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("[bold]writing {task.fields[phase]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console(err=True),
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def on_apply(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = progress.add_task("", total=total, phase=phase)
        progress.update(tasks[phase], completed=done, total=total)

    with progress:
        yield on_apply


@runs.command("approve")
def runs_approve(
    ctx: typer.Context,
    run_id: Annotated[int, typer.Argument(metavar="ID")],
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Apply the plan a safety stop kept (run ID), as reviewed with `syncd runs show ID`.

    Applied only while the directory is as it was when the plan was made:
    if anything was written to it or its IdP was read since, nothing is
    applied and `syncd plan` shows the plan against its current state.
    The approval is a run of its own, audited as `pull:cli`.
    """
    from syncd.reconcile.approve import ApprovalRefused, DirectoryBusy, approve_run
    from syncd.store.models import SyncRun

    st = state(ctx, config=config, json=json)
    conf = settings(st)
    lock_dir = conf.state_dir
    with open_store(st) as engine:
        with session_scope(engine, write=False) as s:
            kept = s.get(SyncRun, run_id)
            directory = kept.directory if kept is not None else None
        d = conf.directories.get(directory or "")
        if directory is not None and (d is None or d.kind == "scim"):
            fail(
                f"run {run_id} is of directory {directory}, which {conf.source or 'the config'} "
                "does not pull",
                "approve it with the config that pulls that directory (its lock and settings)",
            )
        try:
            if st.json:
                result = approve_run(engine, run_id, lock_dir=lock_dir)
            else:
                with _progress() as on_apply:
                    result = approve_run(engine, run_id, lock_dir=lock_dir, on_apply=on_apply)
        except DirectoryBusy as exc:
            fail(exc.problem, exc.fix, code=EXIT_UNREACHABLE)
        except ApprovalRefused as exc:
            fail(exc.problem, exc.fix)
    if st.json:
        print_json({**result.to_dict(), "approves_run": run_id})
    else:
        from cli.sync import show_result

        console().print(f"run {result.run_id}: approving the kept plan of run {run_id}")
        show_result(result, dry_run=False, limit=PLAN_LINES)
    if result.outcome != "applied":
        raise typer.Exit(EXIT_FAILED)
