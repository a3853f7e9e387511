"""Reviewing changes end to end: a fake Graph tenant, a real pull, a safety stop, its kept plan
shown by name, and `syncd runs approve` (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from cli.exitcodes import EXIT_STOPPED, EXIT_UNREACHABLE, EXIT_USAGE
from syncd.service import users as user_ops
from syncd.service.context import Actor
from syncd.store import session_scope
from syncd.store.models import AuditEvent, SyncRun, User
from tests.cli.conftest import Review


def _stop(review: Review, n: int = 5) -> tuple[int, list[str]]:
    """First pull, then `n` users deleted in the IdP (over the threshold of 3): the run stops."""
    first = review.cli("run", "--once")
    assert first.exit_code == 0, first.output
    tenant = review.fake.tenant
    victims = sorted(tenant.users.values(), key=lambda u: u.user_name)[:n]
    for u in victims:
        tenant.delete_user(u.id)
    stopped = review.cli("run", "--once")
    assert stopped.exit_code == EXIT_STOPPED, stopped.output
    run_id = int(re.search(r"syncd runs show (\d+)", stopped.stdout).group(1))  # type: ignore[union-attr]
    return run_id, [u.user_name for u in victims]


def _active(review: Review, names: list[str]) -> list[bool]:
    with session_scope(review.engine, write=False) as s:
        rows = dict(
            s.execute(select(User.user_name, User.active).where(User.directory == review.directory)).all()
        )
    return [rows[n] for n in names]


def test_a_safety_stop_names_the_commands_that_review_and_approve_it(review: Review) -> None:
    run_id, _ = _stop(review)
    with session_scope(review.engine, write=False) as s:
        error = s.get(SyncRun, run_id).error  # type: ignore[union-attr]
    assert f"`syncd runs show {run_id}`" in error and f"`syncd runs approve {run_id}`" in error
    assert "syncd plan" not in error  # the command that just stopped reviews nothing


def test_runs_show_lists_every_change_by_name_paged_with_all(review: Review, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    run_id, victims = _stop(review)
    shown = review.cli("runs", "show", str(run_id))
    assert shown.exit_code == 0, shown.output
    for name in victims:
        assert f"! deactivate {name}" in shown.stdout
    assert re.search(r'- member \S+@\S+ from "team-\d+"', shown.stdout)
    assert "5 users to deactivate" in shown.stdout and f"syncd runs approve {run_id}" in shown.stdout
    assert "{'" not in shown.stdout and "None" not in shown.stdout  # no Python reprs

    monkeypatch.setattr("cli.runs.PLAN_LINES", 2)
    paged = review.cli("runs", "show", str(run_id))
    lines = [ln for ln in paged.stdout.splitlines() if re.match(r"\s+[+~!-] ", ln)]
    more = re.search(r"… and (\d+) more \(--all shows every change\)", paged.stdout)
    assert len(lines) == 2 and more
    every = review.cli("runs", "show", str(run_id), "--all")
    all_lines = [ln for ln in every.stdout.splitlines() if re.match(r"\s+[+~!-] ", ln)]
    assert len(all_lines) == 2 + int(more.group(1)) and "more (--all" not in every.stdout


def test_runs_show_json_carries_every_change_with_names_and_ids(review: Review) -> None:
    run_id, victims = _stop(review)
    data = review.cli.json("runs", "show", str(run_id))
    assert data["started_at"].endswith("+00:00") and isinstance(data["counts"], dict)
    plan = data["plan"]
    assert plan["format"] == 2 and plan["fingerprint"]["audit_id"] is not None
    gone = [u for u in plan["users"] if u["kind"] == "deactivate_user"]
    assert sorted(u["user_name"] for u in gone) == sorted(victims)
    assert all(u["store_id"] and u["external_id"] for u in gone)
    removed = [m for m in plan["members"] if m["kind"] == "remove_members"]
    assert removed and all(m["team_name"] and m["team_store_id"] for m in removed)
    assert {u["user_name"] for m in removed for u in m["users"]} <= set(victims)


def test_plan_json_carries_every_change_with_names(review: Review) -> None:
    out = review.cli("plan", "--json")
    assert out.exit_code == 0, out.output
    (result,) = json.loads(out.stdout)
    plan = result["plan"]
    tenant = review.fake.tenant
    assert {u["user_name"] for u in plan["users"]} == {u.user_name for u in tenant.users.values()}
    assert {t["display_name"] for t in plan["teams"]} == {g.name for g in tenant.groups.values()}
    assert all(u["user_name"] for m in plan["members"] for u in m["users"])


def test_approve_applies_the_kept_plan_as_an_audited_run_once(review: Review) -> None:
    run_id, victims = _stop(review)
    assert _active(review, victims) == [True] * 5
    approved = review.cli("runs", "approve", str(run_id))
    assert approved.exit_code == 0, approved.output
    assert _active(review, victims) == [False] * 5
    with session_scope(review.engine, write=False) as s:
        new = s.execute(select(SyncRun).where(SyncRun.trigger == "approve")).scalar_one()
        assert new.outcome == "applied" and new.counts["deactivate_user"] == 5
        assert new.plan["approves_run"] == run_id
        assert s.get(SyncRun, run_id).plan["approved_by_run"] == new.id  # type: ignore[union-attr]
        actors = set(s.execute(select(AuditEvent.actor).where(AuditEvent.sync_run_id == new.id)).scalars())
    assert actors == {"pull:cli"}
    shown = review.cli("runs", "show", str(run_id))
    assert f"approved and applied by run {new.id}" in shown.stdout
    again = review.cli("runs", "approve", str(run_id))
    assert again.exit_code == EXIT_USAGE and "already approved" in again.stderr
    # the next pull finds nothing left to do
    after = review.cli("run", "--once", "--json")
    assert after.exit_code == 0 and json.loads(after.stdout)[0]["planned"] == {}


def test_approve_is_refused_when_the_directory_changed_since(review: Review) -> None:
    run_id, victims = _stop(review)
    with session_scope(review.engine) as s:
        uid = s.execute(select(User.id).where(User.user_name == victims[0])).scalar_one()
        user_ops.patch_user(
            s,
            actor=Actor("scim", review.directory, "t"),
            user_id=uid,
            operations=[{"op": "replace", "path": "displayName", "value": "Changed"}],
        )
    refused = review.cli("runs", "approve", str(run_id))
    assert refused.exit_code == EXIT_USAGE
    assert f"changed since run {run_id} was planned" in refused.stderr
    assert "1 change(s) were written" in refused.stderr and "syncd plan" in refused.stderr
    assert _active(review, victims) == [True] * 5
    with session_scope(review.engine, write=False) as s:
        assert s.execute(select(SyncRun).where(SyncRun.trigger == "approve")).first() is None


@pytest.mark.parametrize("outcome_run", ["applied", "missing"])
def test_only_a_stopped_run_can_be_approved(review: Review, outcome_run: str) -> None:
    assert review.cli("run", "--once").exit_code == 0
    ref = "1" if outcome_run == "applied" else "999999"
    with session_scope(review.engine, write=False) as s:
        applied = s.execute(select(SyncRun.id).where(SyncRun.outcome == "applied")).scalar_one()
    r = review.cli("runs", "approve", str(applied) if outcome_run == "applied" else ref)
    assert r.exit_code == EXIT_USAGE
    assert ("not stopped by a safety threshold" if outcome_run == "applied" else "no sync run") in r.stderr


def test_approve_while_another_run_holds_the_directory_exits_4_and_writes_nothing(review: Review) -> None:
    """A locked directory is exit code 4 (cli/exitcodes), as for `run --once`; it was 2, which
    tells a script its config or usage is wrong and not to simply try again."""
    from syncd.config import load_config
    from syncd.store.locks import directory_lock

    run_id, victims = _stop(review)
    lock_dir = load_config(review.cli.config).state_dir
    with directory_lock(review.engine, review.directory, lock_dir=lock_dir):
        busy = review.cli("runs", "approve", str(run_id))
    assert busy.exit_code == EXIT_UNREACHABLE, busy.output
    assert "already running" in busy.stderr and "try again" in busy.stderr
    assert _active(review, victims) == [True] * 5
    assert review.cli("runs", "approve", str(run_id)).exit_code == 0
    assert _active(review, victims) == [False] * 5


def test_approve_with_a_config_that_does_not_pull_the_directory_is_refused(review: Review, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A kept plan is applied only by a config that pulls its directory: another config on the
    same store (or one the directory was removed from, to stop syncing it) has another state
    directory, so another lock file, and no say over that directory."""
    from tests.cli.conftest import Cli, write_config

    run_id, victims = _stop(review)
    other = Cli(
        write_config(tmp_path / "other.toml", url=review.engine.url.render_as_string(hide_password=False))
    )
    refused = other("runs", "approve", str(run_id))
    assert refused.exit_code == EXIT_USAGE, refused.output
    assert f"directory {review.directory}" in refused.stderr and "does not pull" in refused.stderr
    assert _active(review, victims) == [True] * 5


def test_a_kept_plan_naming_another_directory_than_its_run_is_refused(review: Review) -> None:
    """The lock and the fingerprint are the run's directory's; the writes are the plan's: they
    must be one directory, or the checks guard one directory and the approval writes another."""
    run_id, victims = _stop(review)
    with session_scope(review.engine) as s:
        run = s.get(SyncRun, run_id)
        assert run is not None and run.plan is not None
        run.plan = {**run.plan, "directory": "elsewhere"}
        s.add(run)
    refused = review.cli("runs", "approve", str(run_id))
    assert refused.exit_code == EXIT_USAGE, refused.output
    assert "elsewhere" in refused.stderr
    assert _active(review, victims) == [True] * 5


def test_an_approval_whose_apply_fails_leaves_the_kept_plan_unapproved(review: Review) -> None:
    """A user removed behind the service's back (no audit event, so the fingerprint holds) makes
    the apply fail: the approval is a failed run of its own, and the kept run is not marked as
    approved by it."""
    from sqlalchemy import delete

    run_id, victims = _stop(review)
    with session_scope(review.engine) as s:
        s.execute(delete(User).where(User.user_name == victims[-1], User.directory == review.directory))
    failed = review.cli("runs", "approve", str(run_id))
    assert failed.exit_code != 0, failed.output
    with session_scope(review.engine, write=False) as s:
        new = s.execute(select(SyncRun).where(SyncRun.trigger == "approve")).scalar_one()
        assert new.outcome == "failed" and new.error
        assert s.get(SyncRun, run_id).plan.get("approved_by_run") is None  # type: ignore[union-attr]
    shown = review.cli("runs", "show", str(run_id))
    assert "approved and applied" not in shown.stdout


def test_approve_names_its_actor_in_the_audit(review: Review) -> None:
    from syncd.config import load_config
    from syncd.reconcile.approve import approve_run

    run_id, _ = _stop(review)
    result = approve_run(
        review.engine, run_id, lock_dir=load_config(review.cli.config).state_dir, actor="console:ann"
    )
    assert result.outcome == "applied"
    with session_scope(review.engine, write=False) as s:
        actors = set(
            s.execute(select(AuditEvent.actor).where(AuditEvent.sync_run_id == result.run_id)).scalars()
        )
    assert actors == {"pull:console:ann"}
