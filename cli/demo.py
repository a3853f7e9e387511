"""`syncd demo`: sync the bundled fake IdP tenants into the embedded SQLite store and show them.

The flow is a list of steps over one `Demo` (start the fakes and a fake OpenID Connect
provider for the console → write the config → pull each directory → show the largest teams →
give the console's sign-in users → print next steps → optionally keep the fakes up); a new
step (e.g. delivering to a fake gateway) is one more function called from `demo_cmd`, adding
its rows to `Demo.report`.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.context import JsonOption, fail, state
from cli.exitcodes import EXIT_FAILED, EXIT_OK, for_run, worst
from cli.output import cell, console, print_json

DEFAULT_STATE_DIR = Path("demo-state")
CONFIG_NOTE = (
    "# The fake IdPs below listen only while `syncd demo` runs; `syncd demo --keep-running` keeps\n"
    "# them up for plan, run --once and login-sync. Store commands (users, teams, runs, audit)\n"
    "# work at any time.\n"
)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)


@dataclass
class Demo:
    """What the steps share: where things are, the store, and what to show at the end."""

    state_dir: Path
    config: Path
    settings: Any
    engine: Any
    quiet: bool
    oidc: Any = None
    results: list[Any] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)


def demo_cmd(
    ctx: typer.Context,
    state_dir: Annotated[
        Path, typer.Option("--state-dir", metavar="DIR", help="Where the demo config and SQLite store go.")
    ] = DEFAULT_STATE_DIR,
    users: Annotated[int, typer.Option(min=1, help="Users per fake tenant.")] = 600,
    groups: Annotated[int, typer.Option(min=1, help="Groups per fake tenant.")] = 40,
    keep_running: Annotated[
        bool,
        typer.Option(
            "--keep-running", help="Keep the fake IdPs up (Ctrl-C stops) to try plan, run --once, login-sync."
        ),
    ] = False,
    json: JsonOption = False,
) -> None:
    """Sync the bundled fake IdP tenants into a SQLite store, deliver the teams to a stand-in gateway.

    Starts fake Entra ID (Graph), Okta, Google Workspace, OneLogin, Keycloak
    and Auth0 tenants on 127.0.0.1, writes a config for them under
    --state-dir, runs one sync of each, shows the largest teams and delivers
    them to a local LiteLLM-style SCIM gateway.
    """
    st = state(ctx, json=json)
    with ExitStack() as stack:
        demo = _start(stack, state_dir, users=users, groups=groups, quiet=st.json)
        _pull_all(demo)
        _largest_teams(demo)
        _console_users(demo)
        from cli.push import demo_delivery

        deliveries, show_delivery = demo_delivery(stack, state_dir, demo.engine, quiet=st.json)
        codes = [for_run(r.outcome, r.failure) for r in demo.results]
        code = worst(codes + [EXIT_FAILED for d in deliveries if d.outcome != "applied"])
        if st.json:
            print_json(
                {
                    "config": str(demo.config),
                    "runs": [r.to_dict() for r in demo.results],
                    "delivery": [d.to_dict() for d in deliveries],
                    **demo.report,
                }
            )
        else:
            _show(demo, keep_running=keep_running and code == EXIT_OK, then=show_delivery)
        if code != EXIT_OK:
            raise typer.Exit(code)
        if keep_running:
            _serve_until_interrupted()


def _start(stack: ExitStack, state_dir: Path, *, users: int, groups: int, quiet: bool) -> Demo:
    """Start the fakes (stopped when `stack` closes), write their config and a migrated store."""
    from connectors.testing.demo import DemoSize, start_fakes
    from syncd.config import ConfigError, load_config
    from syncd.store.engine import make_engine, upgrade

    if not quiet:
        typer.echo("syncd demo: starting the fake IdP tenants on 127.0.0.1", err=True)
    text = start_fakes(stack, state_dir, DemoSize(users, groups, min(30, users)))
    console_text, oidc = _start_oidc(stack, state_dir)
    cfg = state_dir / "config.toml"
    cfg.write_text(CONFIG_NOTE + text + console_text)
    cfg.chmod(0o600)
    try:
        settings = load_config(cfg)
    except ConfigError as exc:
        fail(f"demo config is invalid: {exc}", "this is a bug in syncd demo")
    engine = make_engine(settings.store.url)
    stack.callback(engine.dispose)
    upgrade(engine)
    return Demo(state_dir, cfg, settings, engine, quiet, oidc)


#: The console's admins in the demo: members of this group at the fake OIDC provider.
DEMO_ADMIN_GROUP = "syncd-admins"
#: The demo's console address ([server] admin_listen's default).
DEMO_CONSOLE = "http://127.0.0.1:8081"


def _start_oidc(stack: ExitStack, state_dir: Path) -> tuple[str, Any]:
    """A fake OpenID Connect provider for the console's SSO sign-in, and the config's
    [console] tables naming it (its client secret in a 0600 file beside the config)."""
    from connectors.testing.oidc import FakeOidc, serve_oidc

    oidc = FakeOidc()
    oidc.redirect_uris.add(f"{DEMO_CONSOLE}/signin/callback")
    srv = serve_oidc(oidc)
    stack.callback(srv.stop)
    secret = state_dir / "console-oidc-secret"
    secret.write_text(oidc.client_secret + "\n")
    secret.chmod(0o600)
    text = f"""
# The admin console on {DEMO_CONSOLE} (`syncd run`): SSO through a fake OpenID Connect provider
# that listens while `syncd demo --keep-running` runs; break-glass admin tokens work at any time.
[console]
directory = "okta-demo"
break_glass = true

[console.oidc]
issuer = "{oidc.issuer}"
client_id = "{oidc.client_id}"
client_secret_file = "{secret.resolve()}"
admin_groups = ["{DEMO_ADMIN_GROUP}"]
"""
    return text, oidc


def _console_users(demo: Demo) -> None:
    """The provider's users: "admin" is okta-demo's sample user (so the on-login sync finds
    them) in the admin group; "viewer" is not an admin."""
    user = demo.report.get("sample_user")
    if demo.oidc is None or not user:
        return
    demo.oidc.add_user("admin", email=user, name=f"Demo admin ({user})", groups=(DEMO_ADMIN_GROUP,))
    demo.oidc.add_user("viewer", email="viewer@okta-demo.example", name="Demo viewer", groups=("staff",))
    demo.report["console"] = {
        "url": DEMO_CONSOLE,
        "oidc_issuer": demo.oidc.issuer,
        "sso_users": {"admin": "an admin", "viewer": "not an admin (403)"},
    }


def _pull_all(demo: Demo) -> None:
    from cli.sync import _one
    from connectors.factory import build_connector
    from syncd.reconcile.options import run_options

    s = demo.settings
    for name, d in s.directories.items():
        if not demo.quiet:  # loading an IdP's SDK takes seconds the first time: say what is going on
            typer.echo(f"syncd demo: pulling {name} (kind {d.kind})", err=True)
        # the fakes listen on new ports each time, so cursors (absolute delta links) would be stale
        opts = run_options(d, trigger="demo", lock_dir=s.state_dir, use_cursor=False)
        demo.results.append(_one(demo.engine, build_connector(name, d), opts, quiet=demo.quiet))


def _largest_teams(demo: Demo) -> None:
    from sqlalchemy import select

    from syncd.store.engine import session_scope
    from syncd.store.models import Team, User

    with session_scope(demo.engine, write=False) as s:
        teams = s.execute(
            select(Team.directory, Team.display_name, Team.member_count)
            .order_by(Team.member_count.desc(), Team.display_name)  # type: ignore[attr-defined]
            .limit(15)
        ).all()
        okta_user = s.execute(
            select(User.user_name).where(User.directory == "okta-demo").order_by(User.user_name).limit(1)
        ).scalar()
    demo.report["largest_teams"] = [
        dict(zip(("directory", "team", "members"), t, strict=True)) for t in teams
    ]
    demo.report["sample_user"] = okta_user


def _show(demo: Demo, *, keep_running: bool, then: Callable[[], None] | None = None) -> None:
    from rich.table import Table

    from cli.sync import _show as show_run

    out = console()
    for r in demo.results:
        show_run(r, dry_run=False)
    t = Table("directory", "team", "members", title="largest teams")
    for row in demo.report["largest_teams"]:
        t.add_row(cell(row["directory"]), cell(row["team"]), str(row["members"]))
    out.print(t)
    if then is not None:
        then()
    for line in next_steps(demo, keep_running=keep_running):
        typer.echo(line)  # plain text: commands must not wrap or lose [brackets]


def invocation(cwd: Path | None = None) -> str:
    """This syncd as the user can type it in `cwd`: `syncd` when that is on PATH, else its path
    (`.venv/bin/syncd`), else `python -m cli.main` with this interpreter."""
    here = (cwd or Path.cwd()).absolute()
    argv0 = Path(sys.argv[0])
    if argv0.name == "syncd" and argv0.is_file():
        found = shutil.which("syncd")
        if found and Path(found).resolve() == argv0.resolve():
            return "syncd"
        return _relative(argv0.absolute(), here)
    return f"{_relative(Path(sys.executable).absolute(), here)} -m cli.main"


def _relative(path: Path, here: Path) -> str:
    rel = os.path.relpath(path, here)
    return shlex.quote(rel if not rel.startswith("..") and os.sep in rel else str(path))


def next_steps(demo: Demo, *, keep_running: bool) -> list[str]:
    """The commands to try next, each working as printed from the current directory."""
    syncd = invocation()
    here = Path.cwd().absolute()
    cfg = f"{syncd} --config {_relative(demo.config.absolute(), here)}"
    user = demo.report.get("sample_user")
    live = [f"  {cfg} plan", f"  {cfg} run --once --directory okta-demo"]
    if user:
        live.append(f"  {cfg} login-sync okta-demo {shlex.quote(user)}")
    stored = [
        f"  {cfg} teams list --members --directory entra-demo",
        f"  {cfg} runs",
        f"  {cfg} audit --since 1h",
    ]
    console = [
        f"The admin console: start the daemon, then open {DEMO_CONSOLE} (SCIM listens on 127.0.0.1:8080):",
        f"  {cfg} run",
        "Sign in with SSO as admin (viewer signs in but is refused: not an admin), or with a",
        "break-glass admin token from:",
        f"  {cfg} token create --admin",
    ]
    sso_needs = "Sign in with SSO as admin while the fake IdPs are up (`{again}`; viewer signs in but is"
    if keep_running:
        return [
            "",
            "The fake IdPs keep running until Ctrl-C. In another terminal, from this directory:",
            *live,
            *stored,
            *console,
        ]
    again = f"{syncd} demo --keep-running"
    if demo.state_dir != DEFAULT_STATE_DIR:
        again += f" --state-dir {_relative(demo.state_dir.absolute(), here)}"
    elif Path("Makefile").exists() and ".venv" in syncd:
        again = "make demo-serve"
    return [
        "",
        "Next, from this directory (the fake IdPs stopped with the demo; these read the store):",
        *stored,
        f"To plan or sync against the fake IdPs, keep them up with `{again}`, then in another terminal:",
        *live,
        *console[:2],
        sso_needs.format(again=again),
        "refused: not an admin), or at any time with a break-glass admin token from:",
        console[-1],
    ]


def _serve_until_interrupted() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        typer.echo("syncd demo: fake IdPs stopped", err=True)
