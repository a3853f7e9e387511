"""The daemon's HTTP surface in process: admin API, health, metrics, request ids."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from syncd.daemon.app import build_app
from syncd.daemon.main import Daemon
from syncd.store.engine import make_engine
from tests.daemon.conftest import Env
from tests.daemon.helpers import make_tokens, runs


@dataclass
class Api:
    client: TestClient
    daemon: Daemon
    admin: str
    scim: str

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin}"}

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=self.headers(), **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.client.post(path, headers=self.headers(), **kw)


@pytest.fixture
def api(env: Env) -> Iterator[Api]:
    admin, scim = make_tokens(env.engine)
    daemon = Daemon(env.settings, env.engine)
    app = build_app(daemon.state, public_url="http://testserver", max_body_bytes=1 << 20)
    try:
        with TestClient(app) as client:
            yield Api(client, daemon, admin, scim)
    finally:
        daemon.finish()


def families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(fam: Any, name: str, **labels: str) -> list[float]:
    return [
        s.value
        for s in fam.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


@pytest.mark.parametrize("how", ["none", "garbage", "scim"])
def test_the_admin_api_needs_an_admin_token(api: Api, how: str) -> None:
    headers = {"none": {}, "garbage": {"Authorization": "Bearer nope"}, "scim": api.headers(api.scim)}[how]
    r = api.client.get("/v1/runs", headers=headers)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert api.get("/v1/runs").status_code == 200


def test_health_readiness_and_request_ids(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    r = api.client.get("/readyz", headers={"X-Request-ID": "abc-123"})
    assert r.status_code == 200 and r.json()["status"] == "ready"
    assert r.headers["x-request-id"] == "abc-123"
    assert len(api.client.get("/healthz", headers={"X-Request-ID": "bad id!"}).headers["x-request-id"]) == 16


def test_readiness_fails_on_a_store_without_the_schema(env: Env, tmp_path) -> None:
    bare = make_engine(f"sqlite:///{tmp_path / 'bare.db'}")
    daemon = Daemon(env.settings, bare)
    try:
        with TestClient(build_app(daemon.state, public_url="http://t", max_body_bytes=1024)) as c:
            r = c.get("/readyz")
            assert r.status_code == 503 and r.json()["status"] == "schema not current"
            assert c.get("/healthz").status_code == 200
    finally:
        daemon.finish()
        bare.dispose()


def test_login_endpoint_answers_the_users_teams(api: Api, env: Env) -> None:
    t = env.fake.tenant
    user = next(u for u in t.users.values() if t.transitive_group_ids(u.id))
    r = api.post("/v1/logins", json={"directory": "entra", "user": user.user_name})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["found"] and not body["stale"]
    assert {x["external_id"] for x in body["teams"]} == {
        env.fake.external_id(g) for g in t.transitive_group_ids(user.id)
    }
    assert api.post("/v1/logins", json={"directory": "nope", "user": "x"}).status_code == 404
    assert api.post("/v1/logins", json={"directory": "entra", "user": "nobody@x.example"}).status_code == 404
    assert api.post("/v1/logins", json={"directory": "entra"}).status_code == 422


def test_a_dry_run_keeps_its_plan_and_the_runs_api_shows_it(api: Api) -> None:
    r = api.post("/v1/directories/entra/sync", json={"dry_run": True, "wait": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["outcome"] == "planned" and body["plan"]["counts"]["create_user"] > 0
    one = api.get(f"/v1/runs/{body['run_id']}").json()
    assert one["dry_run"] and one["plan"]["counts"] == body["plan"]["counts"]
    assert [x["id"] for x in api.get("/v1/runs", params={"directory": "entra"}).json()["runs"]] == [
        body["run_id"]
    ]
    assert api.get("/v1/runs/999999").status_code == 404
    assert api.post("/v1/directories/nope/sync").status_code == 404


def test_a_sync_triggered_twice_at_once_runs_once(api: Api, env: Env) -> None:
    env.fakes.faults["entra"].add("timeout", path="/users", delay=2, times=1)  # a slow first page
    barrier = threading.Barrier(2)
    answers: list[Any] = []

    def trigger() -> None:
        barrier.wait()
        answers.append(api.post("/v1/directories/entra/sync"))

    threads = [threading.Thread(target=trigger) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status_code for a in answers) == [202, 409], [a.text for a in answers]
    started = next(a.json() for a in answers if a.status_code == 202)
    handle = api.daemon.runner.running("entra")
    if handle is not None:
        handle.done.wait(60)
    (row,) = runs(env.engine, "entra")
    assert row.id == started["run_id"] and row.trigger == "api" and row.outcome == "applied"


def test_directories_show_last_run_and_cursor_age(api: Api) -> None:
    assert api.post("/v1/directories/entra/sync", json={"wait": True}).json()["outcome"] == "applied"
    (entry,) = api.get("/v1/directories").json()["directories"]
    assert entry["name"] == "entra" and entry["schedule"] == "1h"
    assert (
        entry["last_run"]["outcome"] == "applied" and entry["last_success"]["id"] == entry["last_run"]["id"]
    )
    assert entry["cursor_age_seconds"] is not None and entry["running"] is None


def test_metrics_carry_build_info_and_a_last_success_time_per_directory_from_the_start(api: Api) -> None:
    before = families(api.client.get("/metrics").text)
    ts = "syncd_last_success_timestamp_seconds"
    assert samples(before[ts], ts, directory="entra") == [0.0]  # present before any run
    (info,) = before["syncd_build_info"].samples
    assert info.value == 1.0 and info.labels["version"] and info.labels["python"]
    t0 = time.time()
    api.post("/v1/directories/entra/sync", json={"wait": True})
    text = api.client.get("/metrics").text
    (last,) = samples(families(text)[ts], ts, directory="entra")
    assert t0 - 1 <= last <= time.time() + 1
    assert "_created" not in text


def test_metrics_parse_and_count_runs_logins_and_scim_requests(api: Api, env: Env) -> None:
    api.post("/v1/directories/entra/sync", json={"wait": True})
    user = next(iter(env.fake.tenant.users.values()))
    api.post("/v1/logins", json={"directory": "entra", "user": user.id})
    assert api.client.get("/scim/v2/Users", headers=api.headers(api.scim)).status_code == 200
    assert api.client.get("/scim/v2/Users").status_code == 401
    assert api.client.get("/scim/v2/Users/nope", headers=api.headers(api.scim)).status_code == 404

    r = api.client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    fam = families(r.text)
    assert samples(fam["syncd_sync_runs"], "syncd_sync_runs_total", directory="entra", outcome="applied") == [
        1.0
    ]
    assert (
        samples(fam["syncd_sync_changes"], "syncd_sync_changes_total", directory="entra", kind="create_user")[
            0
        ]
        > 0
    )
    assert samples(fam["syncd_idp_api_calls"], "syncd_idp_api_calls_total", directory="entra")[0] > 0
    assert samples(
        fam["syncd_login_sync_duration_seconds"], "syncd_login_sync_duration_seconds_count", result="fresh"
    ) == [1.0]
    scim = fam["syncd_scim_requests"]
    assert samples(scim, "syncd_scim_requests_total", route="/scim/v2/Users", method="GET", status="200") == [
        1.0
    ]
    assert samples(scim, "syncd_scim_requests_total", route="/scim/v2/Users", method="GET", status="401") == [
        1.0
    ]
    one = samples(scim, "syncd_scim_requests_total", route="/scim/v2/Users/{user_id}", status="404")
    assert one == [1.0]
    assert samples(fam["syncd_scim_request_duration_seconds"], "syncd_scim_request_duration_seconds_count")


@pytest.mark.parametrize("param", ["directory", "trigger"])
def test_runs_filtered_by_a_value_no_run_can_have_answer_empty_not_500(api: Api, param: str) -> None:
    """A NUL in a filter made PostgreSQL refuse the query: a 500 from the admin API."""
    r = api.get("/v1/runs", params={param: "a\x00b"})
    assert r.status_code == 200, r.text
    assert r.json() == {"runs": []}
