"""The served OpenAPI document is true: schemathesis draws requests from it and sends them to a
real uvicorn server (SQLite and PostgreSQL); no answer may be a 5xx, and every status, media
type and body must be one the document declares.

Bounded: the fuzzing phase only (the coverage phase alone sends thousands), MAX_EXAMPLES per
operation (20 operations), a fixed seed and derandomized (the same requests every run). Run on
SQLite only: the store contract suites run both stores; this one checks the HTTP surface.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine

from connectors.testing.server import ServerThread
from tests.conftest import migrated_store
from tests.scim.conftest import new_token

MAX_EXAMPLES = 15
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


CONFIG = {"seed": 7, "phases": {"coverage": {"enabled": False}}}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """This module's store: SQLite only (overrides the two-backend one of conftest)."""
    with migrated_store("sqlite", tmp_path_factory.mktemp("openapi")) as eng:
        yield eng


@pytest.fixture(scope="module")
def api(server: ServerThread) -> Any:
    config = SchemathesisConfig.from_dict(CONFIG)
    return schemathesis.openapi.from_url(f"{server.url}/scim/v2/openapi.json", config=config)


@pytest.fixture(scope="module")
def bearer(store: Engine, server: ServerThread) -> str:
    """A token of a directory that holds a user and a group, so some ids are real."""
    secret = new_token(store, f"fuzz-{uuid.uuid4().hex[:8]}")
    with httpx.Client(base_url=f"{server.url}/scim/v2", headers={"Authorization": f"Bearer {secret}"}) as c:
        uid = c.post("/Users", json={"userName": "fuzz@example.com"}).json()["id"]
        c.post("/Groups", json={"displayName": "fuzz", "members": [{"value": uid}]}).raise_for_status()
    return secret


schema = schemathesis.pytest.from_fixture("api")
SENT: list[int] = []  # statuses answered to the fuzzer, in order


def test_the_document_lists_what_the_server_answers(server: ServerThread) -> None:
    doc = httpx.get(f"{server.url}/scim/v2/openapi.json").json()
    ops = {(m.upper(), p): op for p, item in doc["paths"].items() for m, op in item.items()}
    assert not [k for k, op in ops.items() if "422" in op["responses"]]
    assert {"404", "409", "412"} <= set(ops[("PUT", "/scim/v2/Users/{user_id}")]["responses"])
    assert {"200", "204", "412"} <= set(ops[("PATCH", "/scim/v2/Groups/{group_id}")]["responses"])
    assert "304" in ops[("GET", "/scim/v2/Groups/{group_id}")]["responses"]
    assert ops[("GET", "/scim/v2/Schemas")]["security"] == []
    assert not [
        k for k, op in ops.items() for p in op.get("parameters", []) if p["name"].lower() == "authorization"
    ]


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzzed_requests_get_no_5xx_and_documented_answers(
    case: Any, server: ServerThread, bearer: str
) -> None:
    resp = case.call_and_validate(
        base_url=server.url, headers={"Authorization": f"Bearer {bearer}"}, checks=CHECKS
    )
    SENT.append(resp.status_code)


def test_the_fuzzer_sent_a_few_hundred_requests() -> None:
    """Runs after the fuzz test (file order): it really sent requests, and reached past 400s."""
    assert len(SENT) >= 200, len(SENT)
    assert {200, 201, 400, 404} <= set(SENT), sorted(set(SENT))
