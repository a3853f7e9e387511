"""Microsoft Entra ID's provisioning sequences, default and `?aadOptscim062020`, over HTTP."""

from __future__ import annotations

import uuid

import pytest

from tests.scim.helpers import CORE_GROUP, CORE_USER, ENTERPRISE, Scim, assert_error, ok, patch, uniq

ADSCIM_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
FLAG = {"aadOptscim062020": ""}


def entra_user_body(user_name: str, external_id: str) -> dict:
    """What Entra POSTs, with its habits: meta.resourceType, empty roles, nulls, enterprise ext."""
    return {
        "schemas": [CORE_USER, ENTERPRISE],
        "externalId": external_id,
        "userName": user_name,
        "active": True,
        "displayName": "Test User",
        "emails": [{"primary": True, "type": "work", "value": user_name}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Test User", "familyName": "User", "givenName": "Test"},
        "roles": [],
        "title": None,
        "preferredLanguage": None,
        ENTERPRISE: {"employeeNumber": "1001", "department": None},
    }


def test_test_connection_with_a_random_user_name_is_an_empty_list(scim: Scim) -> None:
    body = ok(scim.get("/Users", params={"filter": f'userName eq "{uuid.uuid4()}"'}))
    assert body["totalResults"] == 0
    assert body["Resources"] == []
    assert body["startIndex"] == 1 and body["itemsPerPage"] == 0


def test_user_lifecycle_default_behaviour(scim: Scim) -> None:
    name = f"Test_User_{uniq()}@contoso.com"
    ext = str(uuid.uuid4())
    # lookup by userName finds nothing, then create
    assert scim.filter("/Users", f'userName eq "{name}"')["totalResults"] == 0
    resp = scim.post("/Users", entra_user_body(name, ext))
    user = ok(resp, 201)
    uid = user["id"]
    assert resp.headers["Location"] == user["meta"]["location"]
    assert user["meta"]["location"].endswith(f"/scim/v2/Users/{uid}")
    assert user["meta"]["resourceType"] == "User"
    assert resp.headers["ETag"] == user["meta"]["version"]
    assert user["externalId"] == ext
    assert user["schemas"] == [CORE_USER, ENTERPRISE]
    assert user[ENTERPRISE] == {"employeeNumber": "1001"}
    assert "roles" not in user and "title" not in user
    assert user["groups"] == []

    # case-insensitive userName filter, externalId filter
    assert scim.filter("/Users", f'userName eq "{name.upper()}"')["Resources"][0]["id"] == uid
    assert scim.filter("/Users", f'externalId eq "{ext}"')["totalResults"] == 1

    got = ok(scim.get(f"/Users/{uid}"))
    assert got["userName"] == name

    # a PATCH diff the default way: capitalised ops, booleans as strings, URN paths, filters
    ops = patch(
        {"op": "Replace", "path": "displayName", "value": "Tess User"},
        {"op": "Replace", "path": "name.familyName", "value": "Userson"},
        {"op": "Add", "path": f"{ENTERPRISE}:department", "value": "Research"},
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": f"new.{name}"},
        {"op": "Add", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+1 555 0100"},
        {"op": "Replace", "path": "active", "value": "True"},
    )
    user = ok(scim.patch(f"/Users/{uid}", ops))
    assert user["displayName"] == "Tess User"
    assert user["name"]["familyName"] == "Userson"
    assert user[ENTERPRISE]["department"] == "Research"
    assert user["emails"] == [{"primary": True, "type": "work", "value": f"new.{name}"}]
    assert user["phoneNumbers"] == [{"type": "mobile", "value": "+1 555 0100"}]
    assert user["meta"]["version"] != got["meta"]["version"]

    # unassign = deactivate with the string "False"; still returned by GET and by filters
    user = ok(scim.patch(f"/Users/{uid}", patch({"op": "Replace", "path": "active", "value": "False"})))
    assert user["active"] is False
    assert ok(scim.get(f"/Users/{uid}"))["active"] is False
    assert scim.filter("/Users", f'userName eq "{name}"')["totalResults"] == 1

    # hard delete 30 days later
    assert scim.delete(f"/Users/{uid}").status_code == 204
    assert_error(scim.get(f"/Users/{uid}"), 404)
    assert_error(scim.delete(f"/Users/{uid}"), 404)


def test_work_email_path_on_a_user_without_one_creates_it(scim: Scim) -> None:
    uid = scim.user(emails=[{"type": "home", "value": "home@example.com"}])["id"]
    ops = patch({"op": "Add", "path": 'emails[type eq "work"].value', "value": "work@example.com"})
    emails = ok(scim.patch(f"/Users/{uid}", ops))["emails"]
    assert {"type": "work", "value": "work@example.com"} in emails
    assert {"type": "home", "value": "home@example.com"} in emails


def test_primary_email_path_replaces_the_primary_value(scim: Scim) -> None:
    uid = scim.user(
        emails=[
            {"type": "work", "value": "a@example.com", "primary": True},
            {"type": "home", "value": "h@x.io"},
        ]
    )["id"]
    ops = patch({"op": "replace", "path": "emails[primary eq true].value", "value": "b@example.com"})
    emails = ok(scim.patch(f"/Users/{uid}", ops))["emails"]
    assert {"type": "work", "value": "b@example.com", "primary": True} in emails
    assert {"type": "home", "value": "h@x.io"} in emails


def test_group_lifecycle_default_behaviour(scim: Scim) -> None:
    u1, u2 = scim.user()["id"], scim.user()["id"]
    name = f"Group {uniq()}"
    params = {"filter": f'displayName eq "{name}"', "excludedAttributes": "members"}
    assert ok(scim.get("/Groups", params=params))["totalResults"] == 0

    body = {
        "schemas": [CORE_GROUP, ADSCIM_GROUP],
        "externalId": str(uuid.uuid4()),
        "displayName": name,
        "meta": {"resourceType": "Group"},
    }
    resp = scim.post("/Groups", body)
    group = ok(resp, 201)
    gid = group["id"]
    assert group["members"] == []
    assert resp.headers["Location"].endswith(f"/scim/v2/Groups/{gid}")

    add = patch(
        {"op": "Add", "path": "members", "value": [{"$ref": None, "value": u1}, {"$ref": None, "value": u2}]}
    )
    resp = scim.patch(f"/Groups/{gid}", add)
    assert resp.status_code == 204 and resp.content == b""
    assert resp.headers["ETag"] == 'W/"2"'
    assert scim.member_ids(gid) == sorted([u1, u2])

    # excludedAttributes=members on GET by id and on the displayName filter
    got = ok(scim.get(f"/Groups/{gid}", params={"excludedAttributes": "members"}))
    assert "members" not in got and got["displayName"] == name
    listed = ok(scim.get("/Groups", params=params))
    assert listed["totalResults"] == 1 and "members" not in listed["Resources"][0]

    # the user sees its group
    assert [g["value"] for g in ok(scim.get(f"/Users/{u1}"))["groups"]] == [gid]

    # Remove with a value list removes exactly those members
    resp = scim.patch(f"/Groups/{gid}", patch({"op": "Remove", "path": "members", "value": [{"value": u1}]}))
    assert resp.status_code == 204
    assert scim.member_ids(gid) == [u2]

    # a rename and a member change in one PATCH
    ops = patch(
        {"op": "Replace", "path": "displayName", "value": f"{name} (renamed)"},
        {"op": "Add", "path": "members", "value": [{"value": u1}]},
    )
    assert scim.patch(f"/Groups/{gid}", ops).status_code == 204
    got = ok(scim.get(f"/Groups/{gid}"))
    assert got["displayName"] == f"{name} (renamed)"
    assert sorted(m["value"] for m in got["members"]) == sorted([u1, u2])

    assert scim.delete(f"/Groups/{gid}").status_code == 204
    assert_error(scim.get(f"/Groups/{gid}"), 404)


def test_aadoptscim062020_user_patch(scim: Scim) -> None:
    uid = scim.user(name={"givenName": "Old", "familyName": "Name"})["id"]
    ops = patch(
        {
            "op": "replace",
            "value": {
                "displayName": "New Display",
                "name.givenName": "New",
                f"{ENTERPRISE}:employeeNumber": "42",
                "active": False,
            },
        }
    )
    user = ok(scim.patch(f"/Users/{uid}", ops, params=FLAG))
    assert user["displayName"] == "New Display"
    assert user["name"] == {"givenName": "New", "familyName": "Name"}
    assert user[ENTERPRISE] == {"employeeNumber": "42"}
    assert user["active"] is False
    assert ENTERPRISE in user["schemas"]


def test_aadoptscim062020_group_member_remove_by_value_filter(scim: Scim) -> None:
    u1, u2 = scim.user()["id"], scim.user()["id"]
    gid = scim.group()["id"]
    add = patch({"op": "add", "path": "members", "value": [{"value": u1}, {"value": u2}]})
    assert scim.patch(f"/Groups/{gid}", add, params=FLAG).status_code == 204
    remove = patch({"op": "remove", "path": f'members[value eq "{u1}"]'})
    assert scim.patch(f"/Groups/{gid}", remove, params=FLAG).status_code == 204
    assert scim.member_ids(gid) == [u2]


def test_duplicate_create_is_409_uniqueness(scim: Scim) -> None:
    name = f"{uniq()}@contoso.com"
    scim.user(name)
    assert_error(scim.post("/Users", {"schemas": [CORE_USER], "userName": name.upper()}), 409, "uniqueness")
    gname = uniq("g")
    scim.group(gname)
    assert_error(scim.post("/Groups", {"schemas": [CORE_GROUP], "displayName": gname}), 409, "uniqueness")


@pytest.mark.parametrize("op", ["Add", "add", "ADD"])
def test_op_names_in_any_case(scim: Scim, op: str) -> None:
    uid = scim.user()["id"]
    user = ok(scim.patch(f"/Users/{uid}", patch({"op": op, "path": "title", "value": "Dr"})))
    assert user["title"] == "Dr"
