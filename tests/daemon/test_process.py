"""`syncd run` as a real subprocess on 127.0.0.1, with fake IdPs served by the test process."""

from __future__ import annotations

import signal
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from syncd.store import session_scope
from syncd.store.engine import make_engine, upgrade
from syncd.store.models import SyncRun, User
from tests.conftest import drop_pg_schema, make_pg_engine_with_schema, pg_schema_url, require_pg
from tests.daemon.helpers import (
    PATIENCE_S,
    Daemon,
    counts_consistent,
    port,
    runs,
    sqlite_setup,
    start_fakes,
    wait_for,
    write_config,
)

PERIOD = 3
#: Four directories plus their fakes share 2 cores in the first test; 2 s slots left the
#: reloaded directory's run starting too late for its slot on a loaded CI machine.
BUSY_PERIOD = "5s"
SETTLED = ("sync started", "slot already run", "slot is being run by another process")


def epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


def applied_schedule_runs(engine: Any, directory: str) -> int:
    return sum(1 for r in runs(engine, directory, "schedule") if r.outcome == "applied")


def users_in(engine: Any, directory: str) -> int:
    with session_scope(engine, write=False) as s:
        return s.execute(
            select(func.count()).select_from(User).where(User.directory == directory)
        ).scalar_one()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(PATIENCE_S)
    yield sock
    sock.close()


def test_the_daemon_schedules_serves_reloads_and_stops_cleanly(tmp_path: Path, notify_socket: Any) -> None:
    with ExitStack() as stack:
        fakes = start_fakes(
            stack,
            tmp_path,
            {"entra": "graph", "okta": "okta", "gws": "google", "manual": "graph"},
            schedule=BUSY_PERIOD,
            schedules={"manual": "1h"},
        )
        late = start_fakes(stack, tmp_path, {"late": "graph"}, schedule=BUSY_PERIOD)
        engine, cfg, admin, scim = sqlite_setup(tmp_path, fakes.toml)
        d = Daemon(
            cfg,
            tmp_path / "daemon.log",
            env={"NOTIFY_SOCKET": notify_socket.getsockname(), "WATCHDOG_USEC": "1000000"},
        )
        stack.callback(d.stop)
        d.wait_ready()
        h = {"Authorization": f"Bearer {admin}"}

        # systemd: READY once listening, then watchdog pings
        seen: list[str] = []
        wait_for(
            lambda: seen.append(notify_socket.recv(4096).decode()) or "WATCHDOG=1" in seen, what="watchdog"
        )
        assert any(m.startswith("READY=1") for m in seen)

        # scheduled runs happen for every pull directory (interval 2 s), and the store follows the IdPs
        for name in ("entra", "okta", "gws"):
            wait_for(lambda n=name: applied_schedule_runs(engine, n) >= 2, what=f"two runs of {name}", proc=d)
            assert users_in(engine, name) == len(fakes.fakes[name].tenant.users)

        # SCIM answers on its listener, the admin API and metrics on the other only
        for path in ("/v1/directories", "/metrics", "/v1/docs", "/"):
            assert httpx.get(d.url + path, headers=h).status_code == 404, path
        assert (
            httpx.get(d.admin_url + "/scim/v2/Users", headers={"Authorization": f"Bearer {scim}"}).status_code
            == 404
        )
        assert (
            httpx.get(d.url + "/healthz").status_code
            == httpx.get(d.admin_url + "/healthz").status_code
            == 200
        )
        sh = {"Authorization": f"Bearer {scim}"}
        created = httpx.post(
            d.url + "/scim/v2/Users",
            headers=sh,
            json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "pushed@x.example"},
        )
        assert created.status_code == 201, created.text
        assert httpx.get(d.url + "/scim/v2/Users", headers=sh).json()["totalResults"] == 1

        # the admin API answers
        names = {
            x["name"] for x in httpx.get(d.admin_url + "/v1/directories", headers=h).json()["directories"]
        }
        assert names == {"push", "entra", "okta", "gws", "manual"}
        entra_user = next(iter(fakes.fakes["entra"].tenant.users.values()))
        login = httpx.post(
            d.admin_url + "/v1/logins", headers=h, json={"directory": "entra", "user": entra_user.user_name}
        )
        assert login.status_code == 200 and login.json()["found"], login.text

        # a sync triggered twice at once runs once
        wait_for(lambda: applied_schedule_runs(engine, "manual") == 1, what="manual's start-up run", proc=d)
        fakes.faults["manual"].add("timeout", path="/users", delay=2, times=1)
        barrier, answers = threading.Barrier(2), []

        def trigger() -> None:
            barrier.wait()
            answers.append(
                httpx.post(d.admin_url + "/v1/directories/manual/sync", headers=h, timeout=PATIENCE_S)
            )

        threads = [threading.Thread(target=trigger) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(a.status_code for a in answers) == [202, 409], [a.text for a in answers]
        wait_for(lambda: all(r.ended_at for r in runs(engine, "manual")), what="the api run to end", proc=d)
        assert [r.outcome for r in runs(engine, "manual", "api")] == ["applied"]

        # /metrics parses with the Prometheus text parser
        fams = {f.name: f for f in text_string_to_metric_families(httpx.get(d.admin_url + "/metrics").text)}
        done = {
            s.labels["directory"]
            for s in fams["syncd_sync_runs"].samples
            if s.name == "syncd_sync_runs_total" and s.labels["outcome"] == "applied" and s.value >= 1
        }
        assert {"entra", "okta", "gws", "manual"} <= done
        routes = {s.labels["route"] for s in fams["syncd_scim_requests"].samples}
        assert "/scim/v2/Users" in routes

        # SIGHUP: the config is read again; a new directory gets scheduled
        cfg.write_text(cfg.read_text() + late.toml)
        d.send(signal.SIGHUP)
        wait_for(
            lambda: applied_schedule_runs(engine, "late") >= 1, what="the reloaded directory to run", proc=d
        )

        # SIGTERM: exit 0, nothing left running, counts consistent
        assert d.stop(signal.SIGTERM) == 0, d.raw_log()[-3000:]
        assert all(r.ended_at is not None and r.outcome != "running" for r in runs(engine))
        assert counts_consistent(engine) == []

        # one JSON object per line, run and request ids on every line, no secret anywhere
        lines = d.logs()
        assert all("run_id" in x and "request_id" in x for x in lines)
        assert any(x["run_id"] for x in lines) and any(x["request_id"] for x in lines)
        raw = d.raw_log()
        secrets = [admin, scim, fakes.fakes["okta"].token, fakes.fakes["entra"].client_secret]
        assert not [s for s in secrets if s in raw]
        # events only: no library set-up chatter, no ANSI duplicates, no console hints
        (ready,) = [x for x in lines if x["msg"] == "syncd ready"]
        assert ready["listen"] != ready["admin_listen"]
        chatter = [x for x in lines if x["logger"] == "alembic.runtime.plugins" or "Context impl" in x["msg"]]
        assert not chatter
        assert "color_message" not in raw and "\x1b" not in raw and "\\u001b" not in raw
        assert "CTRL+C" not in raw
        engine.dispose()


def test_sigterm_during_a_slow_fetch_exits_0_and_abandons_the_run(tmp_path: Path) -> None:
    with ExitStack() as stack:
        fakes = start_fakes(stack, tmp_path, {"entra": "graph"}, schedule="1h")
        engine, cfg, admin, _ = sqlite_setup(tmp_path, fakes.toml)
        d = Daemon(cfg, tmp_path / "daemon.log")
        stack.callback(d.stop)
        d.wait_ready()
        wait_for(lambda: applied_schedule_runs(engine, "entra") == 1, what="the start-up run", proc=d)
        fakes.faults["entra"].add("timeout", delay=120, times=None)  # the IdP hangs from now on
        r = httpx.post(
            d.admin_url + "/v1/directories/entra/sync", headers={"Authorization": f"Bearer {admin}"}
        )
        assert r.status_code == 202 and r.json()["run_id"], r.text

        assert d.stop(signal.SIGTERM) == 0

        row = next(x for x in runs(engine, "entra") if x.id == r.json()["run_id"])
        assert row.outcome == "abandoned" and row.ended_at is not None
        assert counts_consistent(engine) == []
        engine.dispose()


def test_the_daemon_refuses_a_store_without_the_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state' / 'syncd.db'}"
    make_engine(url).dispose()
    cfg = write_config(
        tmp_path / "config.toml", store_url=url, state_dir=tmp_path / "state", port=port(), directories=""
    )
    d = Daemon(cfg, tmp_path / "daemon.log")
    assert d.proc.wait(timeout=PATIENCE_S) == 2
    d.stop()
    assert "syncd db upgrade" in d.raw_log()


@pytest.mark.postgres
def test_two_daemons_on_one_postgres_run_each_slot_once(tmp_path: Path) -> None:
    require_pg()
    engine, schema = make_pg_engine_with_schema()
    try:
        upgrade(engine)
        with ExitStack() as stack:
            fakes = start_fakes(stack, tmp_path, {"entra": "graph"}, schedule=f"{PERIOD}s", jitter="1s")
            daemons = []
            for i in range(2):
                cfg = write_config(
                    tmp_path / f"config{i}.toml",
                    store_url=pg_schema_url(schema),
                    state_dir=tmp_path / f"state{i}",
                    port=port(),
                    directories=fakes.toml,
                )
                daemons.append(Daemon(cfg, tmp_path / f"daemon{i}.log"))
            for d in daemons:
                stack.callback(d.stop)
                d.wait_ready()
            wait_for(lambda: len(runs(engine, "entra", "schedule")) >= 5, what="five scheduled runs")
            assert [d.stop(signal.SIGTERM) for d in daemons] == [0, 0]

            claimed: dict[int, int] = {}  # run id → the slot (epoch s) it claimed, from both logs
            settled: list[set[int]] = []  # per daemon: slots it fired for and found run, busy or ran
            stopped: set[int] = set()  # each daemon's newest run: SIGTERM may abandon it mid-way
            for d in daemons:
                lines = [x for x in d.logs() if x.get("slot")]
                mine = {x["run_id"]: epoch(x["slot"]) for x in lines if x["msg"] == "sync started"}
                claimed.update(mine)
                stopped.update([max(mine)] if mine else [])
                settled.append({epoch(x["slot"]) for x in lines if x["msg"] in SETTLED})
            rows = runs(engine, "entra", "schedule")
            assert {r.id for r in rows} == set(claimed)  # every scheduled run came through a claim
            assert all(
                r.outcome == "applied" or (r.outcome == "abandoned" and r.id in stopped) for r in rows
            ), [(r.id, r.outcome, r.error) for r in rows]
            # from the runs table: one run per slot, in the slot it claimed
            per_slot = Counter(int(r.started_at.timestamp()) // PERIOD * PERIOD for r in rows)
            assert max(per_slot.values()) == 1, per_slot
            assert {r.id: int(r.started_at.timestamp()) // PERIOD * PERIOD for r in rows} == claimed
            both = settled[0] & settled[1]
            assert len(both) >= 3  # the daemons competed for the same slots ...
            assert all(per_slot[slot] == 1 for slot in both)  # ... and each of them was run once
            with session_scope(engine, write=False) as s:
                assert (
                    s.execute(
                        select(func.count()).select_from(SyncRun).where(SyncRun.outcome == "running")
                    ).scalar_one()
                    == 0
                )
    finally:
        engine.dispose()
        drop_pg_schema(schema)
