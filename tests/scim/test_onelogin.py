"""OneLogin's habits: nonexistent-user probe, emails as an object, group create/patch, delete."""

from __future__ import annotations

from tests.scim.helpers import CORE_USER, Scim, assert_error, ok, patch, uniq


def test_nonexistent_user_probe_is_an_empty_list(scim: Scim) -> None:
    body = scim.filter("/Users", 'userName eq "nobody-here@example.com"')
    assert body["totalResults"] == 0 and body["Resources"] == []


def test_emails_sent_as_an_object_without_primary(scim: Scim) -> None:
    name = f"{uniq()}@onelogin.example"
    body = {"schemas": [CORE_USER], "userName": name, "emails": {"value": name, "type": "work"}}
    user = ok(scim.post("/Users", body), 201)
    assert user["emails"] == [{"value": name, "type": "work"}]
    assert scim.filter("/Users", f'emails.value eq "{name}"')["totalResults"] == 1


def test_group_create_patch_and_user_delete(scim: Scim) -> None:
    u1, u2 = scim.user()["id"], scim.user()["id"]
    gid = scim.group("OneLogin Role")["id"]
    ops = patch(
        {"op": "add", "path": "members", "value": [{"value": u1}, {"value": u2}]},
        {"op": "replace", "path": "displayName", "value": "OneLogin Role 2"},
    )
    assert scim.patch(f"/Groups/{gid}", ops).status_code == 204
    assert scim.member_ids(gid) == sorted([u1, u2])

    assert scim.delete(f"/Users/{u1}").status_code == 204
    assert_error(scim.get(f"/Users/{u1}"), 404)
    group = ok(scim.get(f"/Groups/{gid}"))
    assert group["displayName"] == "OneLogin Role 2"
    assert [m["value"] for m in group["members"]] == [u2]  # no deleted user left listed
