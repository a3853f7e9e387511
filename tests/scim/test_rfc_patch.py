"""PATCH cases an independent SCIM conformance suite found, settled by RFC section (both stores)."""

from __future__ import annotations

import uuid

from tests.scim.helpers import CORE_GROUP, CORE_USER, ENTERPRISE, Scim, assert_error, ok, patch


def test_an_extension_value_carrying_its_own_schemas_is_accepted(scim: Scim) -> None:
    """RFC 7644 §3.5.2.1/§3.5.2.3: the value of an extension path is the extension's attributes;
    `schemas` in it (RFC 7643 §3: resource-level) is ignored, as in a POST body."""
    u = scim.user(**{ENTERPRISE: {"department": "Ops", "costCenter": "7"}})
    for op, value, want in [
        ("add", {"schemas": [ENTERPRISE], "department": "R&D"}, {"department": "R&D", "costCenter": "7"}),
        (
            "replace",
            {"schemas": [ENTERPRISE], "employeeNumber": "42"},
            {"department": "R&D", "costCenter": "7", "employeeNumber": "42"},
        ),
        ("replace", {"schemas": [ENTERPRISE], "manager": {"value": "m1"}}, None),
    ]:
        got = ok(scim.patch(f"/Users/{u['id']}", patch({"op": op, "path": ENTERPRISE, "value": value})))
        if want is not None:
            assert got[ENTERPRISE] == want
        assert ENTERPRISE in got["schemas"]
    assert ok(scim.get(f"/Users/{u['id']}"))[ENTERPRISE]["manager"] == {"value": "m1"}
    # path-less, with the extension as a key of the value object
    body = patch(
        {
            "op": "replace",
            "value": {"schemas": [CORE_USER], ENTERPRISE: {"schemas": [ENTERPRISE], "division": "EU"}},
        }
    )
    assert ok(scim.patch(f"/Users/{u['id']}", body))[ENTERPRISE]["division"] == "EU"


def test_removing_active_unassigns_it_and_the_user_counts_as_active(scim: Scim) -> None:
    """RFC 7643 §4.1.1 (readWrite, not required) and RFC 7644 §3.5.2.2 (removed = unassigned)."""
    u = scim.user(active=False)
    got = ok(scim.patch(f"/Users/{u['id']}", patch({"op": "remove", "path": "active"})))
    assert "active" not in got
    assert "active" not in ok(scim.get(f"/Users/{u['id']}"))
    assert u["id"] in [r["id"] for r in scim.filter("/Users", "active eq true")["Resources"]]
    again = ok(scim.patch(f"/Users/{u['id']}", patch({"op": "add", "path": "active", "value": False})))
    assert again["active"] is False
    assert scim.filter("/Users", "active eq true")["totalResults"] == 0


def test_a_member_display_set_by_the_client_is_kept_as_immutable(scim: Scim) -> None:
    """RFC 7643 §2.4 and §4.2: members' `display` is immutable: a client may set it when it adds
    the member; it is kept (a later add does not change it) until the member is removed or the
    member list replaced (RFC 7644 §3.5.2.3 replaces all values). Without one, the userName."""
    a, b, c = (scim.user(f"{n}-{uuid.uuid4().hex[:6]}@example.com") for n in "abc")
    g = scim.group(members=[{"value": a["id"], "display": "Ada from POST"}, {"value": b["id"]}])

    def shown() -> dict[str, str]:
        return {m["value"]: m["display"] for m in ok(scim.get(f"/Groups/{g['id']}"))["members"]}

    assert shown() == {a["id"]: "Ada from POST", b["id"]: b["userName"]}
    add = {
        "op": "add",
        "path": "members",
        "value": [{"value": c["id"], "display": "Carl"}, {"value": a["id"], "display": "ignored"}],
    }
    assert scim.patch(f"/Groups/{g['id']}", patch(add)).status_code == 204
    assert shown() == {a["id"]: "Ada from POST", b["id"]: b["userName"], c["id"]: "Carl"}
    etag = ok(scim.get(f"/Groups/{g['id']}"))["meta"]["version"]
    replace = {
        "op": "replace",
        "path": "members",
        "value": [{"value": a["id"], "display": "Ada again"}, {"value": c["id"]}],
    }
    assert scim.patch(f"/Groups/{g['id']}", patch(replace)).status_code == 204
    assert shown() == {a["id"]: "Ada again", c["id"]: c["userName"]}
    assert ok(scim.get(f"/Groups/{g['id']}"))["meta"]["version"] != etag
    body = {
        "schemas": [CORE_GROUP],
        "displayName": g["displayName"],
        "members": [{"value": a["id"], "display": "Ada by PUT"}],
    }
    assert {m["display"] for m in ok(scim.put(f"/Groups/{g['id']}", body))["members"]} == {"Ada by PUT"}
    bad = {"op": "add", "path": "members", "value": [{"value": b["id"], "display": "x\u0000"}]}
    assert_error(scim.patch(f"/Groups/{g['id']}", patch(bad)), 400, "invalidValue")
