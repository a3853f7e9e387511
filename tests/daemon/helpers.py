"""Fake IdPs in the test process and the daemon as a real subprocess pointed at them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, select

from connectors.testing.faults import FaultPlan
from connectors.testing.google_wire import ADMIN_EMAIL, service_account_info
from connectors.testing.harness import FakeIdP, fake_class
from connectors.testing.server import ServerThread, free_port
from connectors.testing.tenant import Tenant, generate
from syncd.service import tokens
from syncd.store import session_scope
from syncd.store.engine import make_engine, upgrade
from syncd.store.models import Membership, SyncRun, Team

ROOT = Path(__file__).resolve().parents[2]
#: Upper bound for anything the daemon must do (start, run a slot, stop); not a timing assertion.
PATIENCE_S = 60.0


def small_tenant(seed: int, *, domain: str, nesting: int = 1) -> Tenant:
    return generate(seed=seed, users=30, groups=6, members_per_group=6, nesting_depth=nesting, domain=domain)


@dataclass
class Fakes:
    """Running fake IdPs, keyed by directory name; `toml` is their config text."""

    fakes: dict[str, FakeIdP] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    faults: dict[str, FaultPlan] = field(default_factory=dict)
    toml: str = ""


def start_fakes(
    stack: ExitStack,
    tmp: Path,
    kinds: dict[str, str],
    *,
    schedule: str = "2s",
    jitter: str = "0s",
    extra: str = "",
    schedules: dict[str, str] | None = None,
) -> Fakes:
    """Start one fake per directory (name → kind) and write their config tables."""
    out = Fakes()
    seeds = {"graph": 21, "okta": 22, "google": 23}
    for name, kind in kinds.items():
        faults = FaultPlan()
        tenant = small_tenant(seeds[kind], domain=f"{name}.example", nesting=0 if kind == "okta" else 1)
        fake: Any = fake_class(kind)(tenant, faults)
        srv = ServerThread(fake.app()).start()
        stack.callback(srv.stop)
        out.fakes[name], out.urls[name], out.faults[name] = fake, srv.url, faults
        sched = (schedules or {}).get(name, schedule)
        common = f'schedule = "{sched}"\njitter = "{jitter}"\nlogin_time_budget = "3s"\n{extra}'
        if kind == "graph":
            out.toml += f"""
[directories.{name}]
kind = "graph"
tenant_id = "{fake.tenant_id}"
client_id = "{fake.client_id}"
client_secret = "{fake.client_secret}"
base_url = "{srv.url}/v1.0"
token_url = "{srv.url}"
{common}"""
        elif kind == "okta":
            out.toml += f"""
[directories.{name}]
kind = "okta"
org_url = "{srv.url}"
token = "{fake.token}"
{common}"""
        else:
            sa = tmp / f"{name}-sa.json"
            sa.write_text(json.dumps(service_account_info(srv.url + "/token", fake.key)))
            out.toml += f"""
[directories.{name}]
kind = "google"
service_account_file = "{sa}"
subject = "{ADMIN_EMAIL.format(domain=tenant.domain)}"
base_url = "{srv.url}"
token_url = "{srv.url}/token"
{common}"""
    return out


def write_config(
    path: Path, *, store_url: str, state_dir: Path, port: int, directories: str, admin_port: int | None = None
) -> Path:
    """A config with SCIM on `port` and the admin listener on `admin_port` (a free port)."""
    admin_port = admin_port or free_port()
    path.write_text(
        f'state_dir = "{state_dir}"\n\n[store]\nurl = "{store_url}"\n\n'
        f'[server]\nlisten = "127.0.0.1:{port}"\nadmin_listen = "127.0.0.1:{admin_port}"\n\n'
        f'[log]\nlevel = "info"\n\n'
        f'[directories.push]\nkind = "scim"\n{directories}'
    )
    return path


def make_tokens(engine: Engine) -> tuple[str, str]:
    """(admin token, SCIM token of directory "push")."""
    with session_scope(engine) as s:
        _, admin = tokens.create_token(s, directory=None, kind="admin", name="test")
        _, scim = tokens.create_token(s, directory="push", kind="scim", name="test")
    return admin, scim


def sqlite_setup(tmp_path: Path, directories: str) -> tuple[Engine, Path, str, str]:
    """A migrated SQLite store under tmp_path/state, its tokens, and a config naming it:
    (engine, config path, admin token, SCIM token)."""
    url = f"sqlite:///{tmp_path / 'state' / 'syncd.db'}"
    engine = make_engine(url)
    upgrade(engine)
    admin, scim = make_tokens(engine)
    cfg = write_config(
        tmp_path / "config.toml",
        store_url=url,
        state_dir=tmp_path / "state",
        port=port(),
        directories=directories,
    )
    return engine, cfg, admin, scim


class Daemon:
    """`syncd --config CONFIG run` as a subprocess; stderr (not a TTY: JSON lines) to a file.
    `url` is the SCIM listener, `admin_url` the admin listener (console, /v1, /metrics)."""

    def __init__(self, config: Path, log: Path, *, env: dict[str, str] | None = None) -> None:
        self.config, self.log_path = config, log
        text = config.read_text()
        self.port = int(text.split('listen = "127.0.0.1:')[1].split('"')[0])
        self.url = f"http://127.0.0.1:{self.port}"
        admin = text.split('admin_listen = "127.0.0.1:')
        self.admin_url = "http://127.0.0.1:" + admin[1].split('"')[0] if len(admin) > 1 else self.url
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        full_env.pop("SYNCD_CONFIG", None)
        self._err = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "--config", str(config), "run"],
            cwd=ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._err,
        )

    def wait_ready(self) -> Daemon:
        wait_for(lambda: self._ready(), what=f"daemon on {self.url} to be ready", proc=self)
        return self

    def _ready(self) -> bool:
        try:
            return all(
                httpx.get(u + "/readyz", timeout=5).status_code == 200 for u in {self.url, self.admin_url}
            )
        except httpx.HTTPError:
            return False

    def send(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=PATIENCE_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._err.close()
        return code

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for line in self.raw_log().splitlines():
            if line.strip():
                out.append(json.loads(line))
        return out

    def raw_log(self) -> str:
        if not self._err.closed:
            self._err.flush()
        return self.log_path.read_text(errors="replace")


def wait_for(check: Callable[[], Any], *, what: str, proc: Daemon | None = None, timeout: float = PATIENCE_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc is not None and proc.proc.poll() is not None:
            raise AssertionError(
                f"daemon exited ({proc.proc.returncode}) waiting for {what}:\n{proc.raw_log()[-4000:]}"
            )
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}" + (f":\n{proc.raw_log()[-4000:]}" if proc else ""))


def runs(engine: Engine, directory: str | None = None, trigger: str | None = None) -> list[SyncRun]:
    with session_scope(engine, write=False) as s:
        q = select(SyncRun).order_by(SyncRun.id)
        if directory:
            q = q.where(SyncRun.directory == directory)
        if trigger:
            q = q.where(SyncRun.trigger == trigger)
        return list(s.execute(q).scalars())


def counts_consistent(engine: Engine) -> list[str]:
    """Teams whose member_count differs from their membership rows (should be none)."""
    with session_scope(engine, write=False) as s:
        rows = dict(
            s.execute(select(Membership.team_id, func.count()).group_by(Membership.team_id)).tuples().all()
        )
        return [t.id for t in s.execute(select(Team)).scalars() if t.member_count != rows.get(t.id, 0)]


def port() -> int:
    return free_port()
