"""`syncd push --once`: deliver the store's users and teams to the configured targets."""

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

from cli.context import ConfigOption, JsonOption, fail, open_store, settings, state
from cli.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, EXIT_STOPPED, EXIT_UNREACHABLE, worst
from cli.output import console, print_json
from syncd.targets.reconcile import Outcome

EPILOG = (
    "Exit codes: 0 delivered (or planned, with --dry-run); 1 another delivery of the target holds "
    "its lock; 2 bad usage, config or store; 3 stopped by the target's safety thresholds: nothing "
    "was written, rerun with --allow-deletes if the removals are intended; 4 the target cannot be "
    "reached or refused the token; 5 the target's read was incomplete: nothing was removed."
)

TargetsOption = Annotated[
    list[str] | None, typer.Option("--target", "-t", metavar="NAME", help="Only this target (repeatable).")
]


def register(app: typer.Typer) -> None:
    app.command("push", epilog=EPILOG)(push_cmd)


def push_cmd(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Deliver once and exit (cron/timer mode).")] = False,
    target: TargetsOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read the target and show the full plan; write nothing.")
    ] = False,
    full: Annotated[
        bool, typer.Option("--full", help="Full reconcile now: read the target back, adopt, repair drift.")
    ] = False,
    allow_deletes: Annotated[
        bool, typer.Option("--allow-deletes", help="Let removals above the safety thresholds through.")
    ] = False,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Deliver users and teams to each configured target (`\\[targets.NAME]`) once.

    Follows the change feed from each target's cursor. A full reconcile (read the
    target back, adopt what exists, diff, safety checks, apply) runs first on first
    connect, when its `full_reconcile` schedule is due, or with --full. The daemon
    (`syncd run`) delivers continuously.
    """
    st = state(ctx, config=config, json=json)
    if not once:
        fail("push delivers continuously only inside the daemon", "add --once, or run `syncd run`")
    s = settings(st)
    targets = dict(s.targets)
    if target:
        unknown = [n for n in target if n not in targets]
        if unknown:
            fail(f"no target named {', '.join(unknown)}", f"configured: {', '.join(targets) or 'none'}")
        targets = {n: targets[n] for n in target}
    if not targets:
        fail(
            "no targets configured",
            "add a [targets.NAME] table (see config.example.toml and docs/gateway.md)",
        )
    from syncd.targets.run import push_once

    results: list[Outcome] = []
    with open_store(st) as engine:
        for name, t in targets.items():
            with _progress(name, quiet=st.json) as on_progress:
                results += push_once(
                    engine,
                    name,
                    t,
                    full=full,
                    dry_run=dry_run,
                    allow_deletes=allow_deletes,
                    lock_dir=s.state_dir,
                    on_progress=on_progress,
                )
    if st.json:
        print_json([r.to_dict() for r in results])
    else:
        for r in results:
            show(r, dry_run=dry_run)
    raise typer.Exit(exit_code(results))


def exit_code(results: list[Outcome]) -> int:
    codes = []
    for r in results:
        if r.outcome in ("refused", "unreachable"):
            codes.append(EXIT_UNREACHABLE)
        elif r.outcome == "stopped":
            codes.append(EXIT_STOPPED)
        elif r.outcome == "busy":
            codes.append(EXIT_FAILED)
        elif r.plan is not None and not r.plan.complete:
            codes.append(EXIT_PARTIAL)
        else:
            codes.append(EXIT_OK)
    return worst(codes)


class _progress:
    """A Rich progress display fed by `on_progress(phase, done, total)` (total 0: unknown)."""

    def __init__(self, name: str, *, quiet: bool) -> None:
        self.name, self.quiet = name, quiet
        self.tasks: dict[str, Any] = {}
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console(err=True),
            transient=True,
        )

    def __enter__(self) -> Any:
        if self.quiet:
            return None
        self.progress.__enter__()
        return self.update

    def update(self, phase: str, done: int, total: int) -> None:
        if phase not in self.tasks:
            self.tasks[phase] = self.progress.add_task(f"{escape(self.name)}: {phase}", total=total or None)
        self.progress.update(self.tasks[phase], completed=done, total=total or None)

    def __exit__(self, *exc: object) -> None:
        if not self.quiet:
            self.progress.__exit__(None, None, None)


def show(r: Outcome, *, dry_run: bool) -> None:
    from rich.table import Table

    out = console()
    head = {
        "applied": "[green]delivered[/]",
        "planned": "[cyan]planned (dry run: nothing written)[/]",
        "stopped": "[yellow]stopped by safety threshold: nothing written[/]",
        "refused": "[red]refused by the target[/]",
        "unreachable": "[red]target unreachable[/]",
        "busy": "[red]skipped: another delivery holds the target's lock[/]",
    }.get(r.outcome, r.outcome)
    what = f"{r.changes} change(s) from the feed" if r.mode == "incremental" else "full reconcile"
    out.print(
        f"[bold]{escape(r.target)}[/] {what}: {head} — {r.requests} requests, {r.writes} writes, "
        f"{r.seconds:.1f}s"
    )
    if r.plan is not None and (dry_run or r.outcome == "stopped"):
        items = r.plan.items(r.team_names)
        if items:
            t = Table("change", "object", "detail", box=None, pad_edge=False)
            for it in items[:500]:
                obj = it.get("name") or it.get("team") or it.get("local_id") or ""
                detail = ", ".join(
                    f"{k}={v}" for k, v in it.items() if k not in ("change", "name", "team", "local_id")
                )
                t.add_row(it["change"].replace("_", " "), escape(str(obj)), escape(detail))
            out.print(t)
            if len(items) > 500:
                out.print(f"  … and {len(items) - 500} more (--json lists them all)")
        else:
            out.print("  no changes: the target matches the store")
    elif r.outcome == "applied":
        done = {k: v for k, v in r.applied.items() if v}
        if done:
            out.print("  " + ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sorted(done.items())))
        else:
            out.print("  nothing to send: the target is up to date")
    for n in (r.plan.notes if r.plan else [])[:20]:
        out.print(f"  [yellow]note:[/] {escape(n)}")
    for e in r.errors[:20]:
        out.print(f"  [red]error:[/] {escape(e)}")
    if r.error:
        out.print(f"  [red]{escape(r.error)}[/]")


def demo_delivery(stack: Any, state_dir: Any, engine: Any, *, quiet: bool) -> tuple[list[Outcome], Any]:
    """The demo's last step: deliver the pulled teams to a stand-in gateway (the LiteLLM-style
    fake, its state kept in `state_dir/gateway.json`), so a second run delivers nothing.
    Returns the outcomes and a function that prints them."""
    import json
    from pathlib import Path

    from connectors.testing.gateway import Gateway
    from connectors.testing.server import ServerThread
    from syncd.config.models import ScimTarget
    from syncd.targets.run import push_once

    saved = Path(state_dir) / "gateway.json"
    gw = Gateway("sk-demo-gateway-scim")
    if saved.is_file():
        gw.load(json.loads(saved.read_text()))
    srv = ServerThread(gw.app()).start()
    stack.callback(srv.stop)
    target = ScimTarget.model_validate(
        {"kind": "scim", "url": f"{srv.url}/scim/v2", "token": gw.token, "team_name": "{directory}/{name}"}
    )
    with _progress("demo-gateway", quiet=quiet) as on_progress:
        results = push_once(engine, "demo-gateway", target, lock_dir=Path(state_dir), on_progress=on_progress)
    saved.write_text(json.dumps(gw.dump()))
    teams, users = len(gw.teams), len(gw.users)

    def report() -> None:
        out = console()
        out.print(
            "\n[bold]delivery[/] to a stand-in gateway (a LiteLLM-style SCIM fake; see docs/gateway.md):"
        )
        for r in results:
            show(r, dry_run=False)
        out.print(f"  the gateway now has {teams} teams and {users} users")

    return results, report
