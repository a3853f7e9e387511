"""A read cut short (the IdP dies mid-read) is a `partial` run: recorded, shown, exit code 5.

Through the real connectors and fakes, on SQLite and PostgreSQL: the run applies what it read,
removes nothing, records outcome `partial` with the reason, and ends after a bounded number of
requests to the dead host. The CLI exits 5 for it and 4 when the IdP cannot be reached at all.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from cli.exitcodes import EXIT_OK, EXIT_PARTIAL, EXIT_UNREACHABLE
from cli.main import app
from cli.sync import exit_code
from connectors.testing.faults import FaultPlan, FaultRule
from connectors.testing.harness import FakeIdP, running_fake
from connectors.testing.tenant import Tenant, generate
from syncd.daemon.metrics import Metrics
from syncd.reconcile.run import RunOptions, run_sync
from syncd.store import session_scope
from syncd.store.models import Membership, SyncRun, Team, User
from tests.connectors.test_contract import FAST, MEMBERS_PATH

KINDS = ["graph", "okta", "google"]
BREAKER = 5
NEVER = 10**9


def tenant() -> Tenant:
    return generate(seed=11, users=60, groups=30, members_per_group=5, nesting_depth=1)


def armed_later(faults: FaultPlan, kind: str) -> FaultRule:
    """A `die` rule that does not fire until `arm` (with it in the plan, the fake sits behind a
    kill switch from the start)."""
    return faults.add("die", path=MEMBERS_PATH[kind], after=NEVER)


def arm(rule: FaultRule, after: int) -> None:
    rule.after = rule.seen + after


def memberships(engine: Engine, directory: str) -> set[tuple[str, str]]:
    with session_scope(engine, write=False) as s:
        q = (
            select(Team.external_id, User.external_id)
            .join(Membership, Membership.team_id == Team.id)
            .join(User, User.id == Membership.user_id)
            .where(Team.directory == directory)
        )
        return {(t, u) for t, u in s.execute(q).tuples()}


def connector(fake: FakeIdP, url: str, directory: str) -> Any:
    opts = {**FAST, "max_retries": 3, "time_budget": 120.0, "max_connection_failures": BREAKER}
    return fake.connector(url, directory=directory, **opts)


@pytest.mark.parametrize("kind", KINDS)
def test_an_idp_dying_mid_read_ends_the_run_partial_and_removes_nothing(
    engine: Engine, tmp_path: Path, kind: str
) -> None:
    directory = f"dies-{uuid.uuid4().hex[:8]}"
    faults = FaultPlan()
    rule = armed_later(faults, kind)
    opts = RunOptions(lock_dir=tmp_path)
    with running_fake(kind, tenant(), faults) as (fake, url):
        first = run_sync(engine, connector(fake, url, directory), opts)
        assert first.outcome == "applied" and first.complete, first.error
        before = memberships(engine, directory)
        t, x = fake.tenant, fake.external_id
        for g in list(t.groups.values())[:10]:  # a complete read would remove these
            for u in list(g.user_ids)[:2]:
                t.remove_member(g.id, u)
        arm(rule, 3)

        r = run_sync(engine, connector(fake, url, directory), opts)

        assert faults.dead
        assert r.outcome == "partial" and not r.complete, r.error
        assert exit_code(r) == EXIT_PARTIAL
        assert "stopped answering" in (r.error or "")
        assert memberships(engine, directory) >= before  # nothing removed
        assert faults.after_death <= BREAKER + FAST["concurrency"] + 2, faults.after_death
        assert x  # ids as the connector reports them
        metrics = Metrics()
        metrics.record_run(r, "schedule")
        runs = {
            (smp.labels["directory"], smp.labels["outcome"]): smp.value
            for fam in text_string_to_metric_families(metrics.render().decode())
            for smp in fam.samples
            if smp.name == "syncd_sync_runs_total"
        }
        assert runs == {(directory, "partial"): 1.0}
    with session_scope(engine, write=False) as s:
        row = s.get(SyncRun, r.run_id)
        assert row is not None and row.outcome == "partial"
        assert "stopped answering" in (row.error or "")
        assert any("stopped answering" in n for n in (row.plan or {}).get("notes", []))
        assert row.counts.get("remove_members", 0) == 0


def okta_config(tmp_path: Path, engine: Engine, fake: Any, url: str, directory: str) -> str:
    store = engine.url.render_as_string(hide_password=False)
    path = tmp_path / "config.toml"
    path.write_text(
        f'state_dir = "{tmp_path}"\n[store]\nurl = "{store}"\n'
        f'[directories.{directory}]\nkind = "okta"\norg_url = "{url}"\ntoken = "{fake.token}"\n'
        f"concurrency = {FAST['concurrency']}\nmax_connection_failures = {BREAKER}\n"
    )
    return str(path)


def test_run_once_exits_5_for_a_partial_read_and_4_for_an_unreachable_idp(
    engine: Engine, tmp_path: Path
) -> None:
    directory = f"okta-{uuid.uuid4().hex[:8]}"
    faults = FaultPlan()
    rule = armed_later(faults, "okta")
    cli = CliRunner()
    with running_fake("okta", tenant(), faults) as (fake, url):
        cfg = okta_config(tmp_path, engine, fake, url, directory)
        ok = cli.invoke(app, ["--config", cfg, "run", "--once"])
        assert ok.exit_code == EXIT_OK, ok.output

        t = fake.tenant
        for g in list(t.groups.values())[:10]:  # changed groups: the next (delta) read lists their members
            t.remove_member(g.id, next(iter(g.user_ids)))
        arm(rule, 3)
        cut = cli.invoke(app, ["--config", cfg, "--json", "run", "--once"])
        assert cut.exit_code == EXIT_PARTIAL, cut.output
        [res] = json.loads(cut.stdout)
        assert res["outcome"] == "partial" and res["complete"] is False
        assert any("stopped answering" in n for n in res["notes"])

        runs = cli.invoke(app, ["--config", cfg, "--json", "runs"])
        assert [r["outcome"] for r in json.loads(runs.stdout)][:2] == ["partial", "applied"]
        shown = cli.invoke(app, ["--config", cfg, "runs", "show", str(res["run_id"])])
        assert shown.exit_code == 0 and "stopped answering" in shown.stdout

        human = cli.invoke(app, ["--config", cfg, "run", "--once"])  # the host stays dead
        assert human.exit_code == EXIT_UNREACHABLE, human.output
        plan = cli.invoke(app, ["--config", cfg, "plan"])
        assert plan.exit_code == EXIT_UNREACHABLE, plan.output


def test_an_okta_run_whose_system_log_is_gone_reads_in_full_and_says_so(
    engine: Engine, tmp_path: Path
) -> None:
    """404 from /api/v1/logs (logs not available to the org) used to fail every run after the
    first; now the run reads in full, applies, and its notes say why (CLI and `runs show`)."""
    directory = f"okta-{uuid.uuid4().hex[:8]}"
    faults = FaultPlan()
    cli = CliRunner()
    with running_fake("okta", tenant(), faults) as (fake, url):
        cfg = okta_config(tmp_path, engine, fake, url, directory)
        assert cli.invoke(app, ["--config", cfg, "run", "--once"]).exit_code == EXIT_OK
        faults.add("error", path="/api/v1/logs", status=404, times=None)
        t = fake.tenant
        gone = next(iter(t.groups))
        t.delete_group(gone)
        for _ in range(2):  # every later run, not only the next one
            r = cli.invoke(app, ["--config", cfg, "--json", "run", "--once"])
            assert r.exit_code == EXIT_OK, r.output
            [res] = json.loads(r.stdout)
            assert res["outcome"] == "applied" and res["mode"] == "full"
            assert any("System Log could not be read" in n for n in res["notes"]), res["notes"]
        human = cli.invoke(app, ["--config", cfg, "runs", "show", str(res["run_id"])])
        assert human.exit_code == 0 and "System Log could not be read" in human.stdout
    with session_scope(engine, write=False) as s:
        team = s.execute(
            select(Team).where(Team.directory == directory, Team.external_id == fake.external_id(gone))
        ).scalar_one()
        assert team.archived  # the deletion was seen by the full read
