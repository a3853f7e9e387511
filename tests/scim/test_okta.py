"""Okta's provisioning sequences (users and Push Groups) over HTTP."""

from __future__ import annotations

from tests.scim.helpers import CORE_GROUP, CORE_USER, PATCH_OP, Scim, assert_error, ok, patch, uniq


def okta_user_body(user_name: str) -> dict:
    return {
        "schemas": [CORE_USER],
        "userName": user_name,
        "name": {"givenName": "Dave", "familyName": "Doe"},
        "emails": [{"primary": True, "value": user_name, "type": "work"}],
        "displayName": "Dave Doe",
        "locale": "en-US",
        "externalId": f"00u{uniq('')}",
        "groups": [],
        "password": "1mz050nq",
        "active": True,
    }


def test_probe_returns_integer_paging_fields(scim: Scim) -> None:
    for _ in range(3):
        scim.user()
    body = ok(scim.get("/Users", params={"startIndex": "1", "count": "2"}))
    assert body["totalResults"] == 3
    assert body["startIndex"] == 1 and body["itemsPerPage"] == 2
    assert all(isinstance(body[k], int) for k in ("totalResults", "startIndex", "itemsPerPage"))
    page2 = ok(scim.get("/Users", params={"startIndex": "3", "count": "2"}))
    assert page2["startIndex"] == 3 and page2["itemsPerPage"] == 1
    ids = [r["id"] for r in body["Resources"] + page2["Resources"]]
    assert len(set(ids)) == 3  # stable order: pages neither overlap nor skip


def test_user_lifecycle(scim: Scim) -> None:
    name = f"dave.{uniq()}@example.com"
    lookup = {"filter": f'userName eq "{name.upper()}"', "startIndex": 1, "count": 100}
    assert ok(scim.get("/Users", params=lookup))["totalResults"] == 0

    user = ok(scim.post("/Users", okta_user_body(name)), 201)
    uid = user["id"]
    assert "password" not in user
    assert user["groups"] == []
    assert ok(scim.get("/Users", params=lookup))["Resources"][0]["id"] == uid

    assert_error(scim.post("/Users", okta_user_body(name)), 409, "uniqueness")

    # update: GET then a full PUT of what was read (id, meta, groups, schemas included)
    got = ok(scim.get(f"/Users/{uid}"))
    got["name"]["familyName"] = "Dough"
    got["title"] = "Engineer"
    put = ok(scim.put(f"/Users/{uid}", got))
    assert put["name"] == {"givenName": "Dave", "familyName": "Dough"}
    assert put["title"] == "Engineer"
    assert put["id"] == uid and put["meta"]["version"] != got["meta"]["version"]

    # the same PUT again changes nothing and keeps the version
    again = ok(scim.put(f"/Users/{uid}", put))
    assert again["meta"]["version"] == put["meta"]["version"]

    # deactivation, the catalog-app way
    body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]}
    resp = scim.patch(f"/Users/{uid}", body)
    assert ok(resp)["active"] is False
    assert ok(scim.get(f"/Users/{uid}"))["active"] is False


def test_put_with_a_different_id_is_a_mutability_error(scim: Scim) -> None:
    got = scim.user()
    body = {**got, "id": "someone-else"}
    assert_error(scim.put(f"/Users/{got['id']}", body), 400, "mutability")


def test_push_groups(scim: Scim) -> None:
    u1, u2, u3 = (scim.user()["id"] for _ in range(3))
    group = ok(
        scim.post("/Groups", {"schemas": [CORE_GROUP], "displayName": "Okta Group", "members": []}), 201
    )
    gid = group["id"]
    assert group["members"] == []

    # rename, with the read-only id echoed
    rename = patch({"op": "replace", "value": {"id": gid, "displayName": "Okta Group 2"}})
    assert scim.patch(f"/Groups/{gid}", rename).status_code == 204
    assert ok(scim.get(f"/Groups/{gid}"))["displayName"] == "Okta Group 2"

    # member add without type, with display
    add = patch({"op": "add", "path": "members", "value": [{"value": u1, "display": "x"}, {"value": u2}]})
    assert scim.patch(f"/Groups/{gid}", add).status_code == 204
    assert scim.member_ids(gid) == sorted([u1, u2])

    # adding again is a no-op (not a replace of the list)
    add3 = patch({"op": "add", "path": "members", "value": [{"value": u3}]})
    assert scim.patch(f"/Groups/{gid}", add3).status_code == 204
    assert scim.member_ids(gid) == sorted([u1, u2, u3])

    remove = patch({"op": "remove", "path": f'members[value eq "{u2}"]'})
    assert scim.patch(f"/Groups/{gid}", remove).status_code == 204
    assert scim.member_ids(gid) == sorted([u1, u3])

    # replace the whole list, with the id echoed in another op
    replace = patch(
        {"op": "replace", "value": {"id": gid, "displayName": "Okta Group 2"}},
        {"op": "replace", "path": "members", "value": [{"value": u2}]},
    )
    assert scim.patch(f"/Groups/{gid}", replace).status_code == 204
    assert scim.member_ids(gid) == [u2]

    # some apps PUT the full group
    full = {"schemas": [CORE_GROUP], "id": gid, "displayName": "Okta Group 3", "members": [{"value": u1}]}
    put = ok(scim.put(f"/Groups/{gid}", full))
    assert put["displayName"] == "Okta Group 3"
    assert [m["value"] for m in put["members"]] == [u1]

    # unlink and delete
    assert scim.delete(f"/Groups/{gid}").status_code == 204
    assert_error(scim.get(f"/Groups/{gid}"), 404)
    assert ok(scim.get(f"/Users/{u1}"))["groups"] == []


def test_put_without_members_keeps_the_members(scim: Scim) -> None:
    uid = scim.user()["id"]
    gid = scim.group(members=[{"value": uid}])["id"]
    got = ok(scim.get(f"/Groups/{gid}", params={"excludedAttributes": "members"}))
    ok(scim.put(f"/Groups/{gid}", {**got, "displayName": "renamed " + uniq()}))
    assert scim.member_ids(gid) == [uid]
