"""Directory locks across real processes: a killed `run --once` leaves no run "running" for
long, and two processes with different state directories share one SQLite lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from syncd.store.engine import make_engine, schema_status, upgrade
from syncd.store.locks import DEAD_HOLDER, LockBusy, directory_lock, lock_file
from tests.daemon.helpers import PATIENCE_S, ROOT, runs, start_fakes, wait_for


def _config(path: Path, engine: Engine, state_dir: Path, directories: str) -> Path:
    url = engine.url.render_as_string(hide_password=False)
    path.write_text(f'state_dir = "{state_dir}"\n\n[store]\nurl = "{url}"\n{directories}')
    return path


def _once(config: Path, directory: str, **kw: Any) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SYNCD_CONFIG", None)
    env.pop("STATE_DIRECTORY", None)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.main",
            "--config",
            str(config),
            "--json",
            "run",
            "--once",
            "-d",
            directory,
        ],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,
    )


def _result(proc: subprocess.Popen[bytes]) -> tuple[int, dict[str, Any]]:
    out, err = proc.communicate(timeout=PATIENCE_S)
    try:
        (result,) = json.loads(out)
    except ValueError:
        raise AssertionError(f"no JSON result (exit {proc.returncode}): {out!r} {err[-2000:]!r}") from None
    return proc.returncode, result


def test_a_killed_run_once_is_abandoned_by_the_next_lock_holder_in_another_state_dir(
    engine: Engine, tmp_path: Path
) -> None:
    name = f"d-{uuid.uuid4().hex[:10]}"  # advisory lock keys are database-wide
    with ExitStack() as stack:
        fakes = start_fakes(stack, tmp_path, {name: "graph"})
        hang = fakes.faults[name].add("timeout", delay=PATIENCE_S * 2)  # the first request hangs
        unit = _config(tmp_path / "unit.toml", engine, tmp_path / "unit-state", fakes.toml)
        shell = _config(tmp_path / "shell.toml", engine, tmp_path / "shell-state", fakes.toml)

        holder = _once(unit, name)
        stack.callback(holder.kill)
        wait_for(lambda: any(r.outcome == "running" for r in runs(engine, name)), what="the first run's row")

        # another process, another state directory: the lock is the same one (beside the store)
        code, busy = _result(_once(shell, name))
        assert (code, busy["outcome"]) == (4, "busy"), busy  # exit 4: another run has the lock

        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=PATIENCE_S)
        (dead,) = runs(engine, name)
        assert dead.outcome == "running"  # what the kill leaves behind ...

        hang.times = 0
        code, fresh = _result(_once(shell, name))
        assert (code, fresh["outcome"]) == (0, "applied"), fresh
        dead, new = runs(engine, name)  # ... and what the next lock holder makes of it
        assert (dead.outcome, dead.error) == ("abandoned", DEAD_HOLDER) and dead.ended_at is not None
        assert new.id == fresh["run_id"] and new.outcome == "applied"


def test_the_sqlite_lock_lives_beside_the_database_whatever_lock_dir_says(
    engine: Engine, tmp_path: Path
) -> None:
    if engine.dialect.name != "sqlite":
        return
    db = Path(engine.url.database or "")
    assert lock_file(engine, "okta") == db.with_name(f"{db.name}.okta.lock")
    with directory_lock(engine, "okta", lock_dir=tmp_path / "elsewhere"):
        assert (db.parent / f"{db.name}.okta.lock").exists()
    assert not (tmp_path / "elsewhere").exists()


def test_postgres_locks_of_two_schemas_do_not_block_each_other(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        return
    from tests.conftest import drop_pg_schema, make_pg_engine_with_schema

    other, schema = make_pg_engine_with_schema()
    try:
        upgrade(other)
        name = f"d-{uuid.uuid4().hex[:10]}"
        with directory_lock(engine, name), directory_lock(other, name):  # two schemas: both free
            busy = _busy(other, name)
        assert busy  # one schema: the lock holds
    finally:
        other.dispose()
        drop_pg_schema(schema)


def _busy(engine: Engine, name: str) -> bool:
    try:
        with directory_lock(engine, name):
            return False
    except LockBusy:
        return True


def test_replicas_upgrading_one_postgres_schema_at_once_all_succeed() -> None:
    import threading

    from tests.conftest import drop_pg_schema, make_pg_engine_with_schema, require_pg

    require_pg()
    first, schema = make_pg_engine_with_schema()
    engines = [first] + [make_engine(first.url.render_as_string(hide_password=False)) for _ in range(3)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(engines))

    def up(e: Engine) -> None:
        barrier.wait()
        try:
            upgrade(e)
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    try:
        threads = [threading.Thread(target=up, args=(e,), daemon=True) for e in engines]
        for t in threads:
            t.start()
        for t in threads:
            t.join(PATIENCE_S)
        assert not [t for t in threads if t.is_alive()], "upgraders deadlocked"
        assert errors == []
        current, head = schema_status(first)
        assert current == head
    finally:
        for e in engines:
            e.dispose()
        drop_pg_schema(schema)
