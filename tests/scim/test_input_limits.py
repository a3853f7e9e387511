"""Hostile and over-long input over HTTP: one SCIM 400 naming the attribute, the same on
SQLite and PostgreSQL, and a directory whose filters keep working afterwards."""

from __future__ import annotations

import pytest

from tests.scim.helpers import CORE_USER, ENTERPRISE, Scim, assert_error, ok, patch


@pytest.mark.parametrize(
    ("extra", "attr"),
    [
        ({"title": "a\u0000b"}, "title"),
        ({"nickName": "\u001b[2J"}, "nickName"),
        ({ENTERPRISE: {"department": "d\u0000"}}, "department"),
        ({ENTERPRISE: {"manager": {"value": "m\u0000"}}}, "manager.value"),
        ({"userName": "ß" * 300}, "userName"),
        ({"userName": "u" * 1_500_000}, "userName"),
        ({"userName": "   "}, "userName"),
        ({"externalId": "e" * 600}, "externalId"),
    ],
    ids=["nul", "esc", "ext-nul", "manager-nul", "casefold", "huge", "blank", "long-external-id"],
)
def test_post_refuses_with_invalid_value_naming_the_attribute(scim: Scim, extra: dict, attr: str) -> None:
    body = assert_error(
        scim.post("/Users", {"schemas": [CORE_USER], "userName": "a@example.com", **extra}),
        400,
        "invalidValue",
    )
    assert body["detail"].startswith(attr), body


def test_a_refused_nul_leaves_json_filters_working(scim: Scim) -> None:
    u = scim.user("ada@example.com", title="Engineer", nickName="ada", **{ENTERPRISE: {"department": "R&D"}})
    assert_error(scim.post("/Users", {"userName": "x@example.com", "title": "a\u0000b"}), 400, "invalidValue")
    assert_error(
        scim.patch(f"/Users/{u['id']}", patch({"op": "replace", "path": "title", "value": "\u0000"})),
        400,
        "invalidValue",
    )
    assert_error(
        scim.put(f"/Users/{u['id']}", {"userName": "ada@example.com", "title": "\u0000"}), 400, "invalidValue"
    )
    for flt in ('title eq "Engineer"', 'nickName sw "ad"', f'{ENTERPRISE}:department eq "R&D"'):
        assert scim.filter("/Users", flt)["totalResults"] == 1, flt
    assert_error(scim.get("/Users", params={"filter": 'title eq "a\\u0000b"'}), 400, "invalidFilter")
    assert_error(scim.get("/Users/a%00b"), 404)
    g = scim.group("eng")
    assert_error(
        scim.patch(
            f"/Groups/{g['id']}", patch({"op": "add", "path": "members", "value": [{"value": "u\u0000"}]})
        ),
        400,
        "invalidValue",
    )
    assert ok(scim.get(f"/Users/{u['id']}"))["title"] == "Engineer"
