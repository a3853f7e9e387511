"""Protocol features: ETags, projection, paging, .search, discovery, media types, OpenAPI."""

from __future__ import annotations

import httpx
import pytest

from connectors.testing.server import ServerThread
from syncd.service.common import MAX_RESULTS
from tests.scim.helpers import (
    CORE_GROUP,
    CORE_USER,
    ENTERPRISE,
    LIST,
    SCIM_JSON,
    Scim,
    assert_error,
    ok,
    patch,
    uniq,
)

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def rich_user(scim: Scim) -> dict:
    return scim.user(
        externalId=uniq("ext"),
        name={"givenName": "Barbara", "familyName": "Jensen"},
        emails=[
            {"value": "b@example.com", "type": "work", "primary": True},
            {"value": "h@x.io", "type": "home"},
        ],
        title="Tour Guide",
        password="never-shown",
        **{ENTERPRISE: {"employeeNumber": "701984", "department": "Tours"}},
    )


class TestETags:
    def test_etag_header_is_meta_version(self, scim: Scim) -> None:
        uid = scim.user()["id"]
        resp = scim.get(f"/Users/{uid}")
        assert resp.headers["ETag"] == ok(resp)["meta"]["version"] == 'W/"1"'
        assert resp.headers["Location"] == resp.json()["meta"]["location"]

    def test_if_none_match_current_is_304(self, scim: Scim) -> None:
        uid = scim.user()["id"]
        etag = scim.get(f"/Users/{uid}").headers["ETag"]
        resp = scim.get(f"/Users/{uid}", headers={"If-None-Match": etag})
        assert resp.status_code == 304 and resp.content == b""
        assert resp.headers["ETag"] == etag
        assert scim.get(f"/Users/{uid}", headers={"If-None-Match": '"1"'}).status_code == 304  # weak compare
        assert scim.get(f"/Users/{uid}", headers={"If-None-Match": 'W/"9"'}).status_code == 200
        gid = scim.group()["id"]
        assert scim.get(f"/Groups/{gid}", headers={"If-None-Match": "*"}).status_code == 304

    def test_if_match_current_or_star_applies(self, scim: Scim) -> None:
        user = scim.user()
        uid = user["id"]
        resp = scim.patch(
            f"/Users/{uid}",
            patch({"op": "add", "path": "title", "value": "x"}),
            headers={"If-Match": 'W/"1"'},
        )
        assert ok(resp)["meta"]["version"] == resp.headers["ETag"] == 'W/"2"'
        gid = scim.group()["id"]
        ops = patch({"op": "add", "path": "members", "value": [{"value": uid}]})
        assert scim.patch(f"/Groups/{gid}", ops, headers={"If-Match": "*"}).status_code == 204
        stale = scim.patch(f"/Groups/{gid}", ops, headers={"If-Match": 'W/"1"'})
        assert_error(stale, 412)
        assert scim.delete(f"/Groups/{gid}", headers={"If-Match": 'W/"2"'}).status_code == 204

    def test_a_no_op_write_keeps_the_version(self, scim: Scim) -> None:
        user = scim.user(title="same")
        after = ok(
            scim.patch(f"/Users/{user['id']}", patch({"op": "replace", "path": "title", "value": "same"}))
        )
        assert after["meta"]["version"] == user["meta"]["version"]


class TestProjection:
    def test_attributes_by_id(self, scim: Scim) -> None:
        uid = rich_user(scim)["id"]
        body = ok(scim.get(f"/Users/{uid}", params={"attributes": "userName"}))
        assert set(body) == {"schemas", "id", "userName"}
        assert body["schemas"] == [CORE_USER]

    def test_sub_attributes_and_urn_names(self, scim: Scim) -> None:
        uid = rich_user(scim)["id"]
        attrs = f"name.givenName,EMAILS.value,{ENTERPRISE}:employeeNumber,meta.version"
        body = ok(scim.get(f"/Users/{uid}", params={"attributes": attrs}))
        assert body["name"] == {"givenName": "Barbara"}
        assert body["emails"] == [{"value": "b@example.com"}, {"value": "h@x.io"}]
        assert body[ENTERPRISE] == {"employeeNumber": "701984"}
        assert body["meta"] == {"version": 'W/"1"'}
        assert body["schemas"] == [CORE_USER, ENTERPRISE]
        assert "title" not in body and "groups" not in body

    def test_core_urn_qualified_attribute(self, scim: Scim) -> None:
        uid = rich_user(scim)["id"]
        body = ok(scim.get(f"/Users/{uid}", params={"attributes": f"{CORE_USER}:title"}))
        assert set(body) == {"schemas", "id", "title"}

    def test_excluded_attributes(self, scim: Scim) -> None:
        uid = rich_user(scim)["id"]
        excl = f"emails,name.familyName,{ENTERPRISE},id,schemas,groups"
        body = ok(scim.get(f"/Users/{uid}", params={"excludedAttributes": excl}))
        assert "emails" not in body and "groups" not in body and ENTERPRISE not in body
        assert body["name"] == {"givenName": "Barbara"}
        assert body["id"] == uid and body["schemas"] == [CORE_USER]  # returned: always
        assert body["title"] == "Tour Guide" and "meta" in body

    def test_password_is_never_returned(self, scim: Scim) -> None:
        uid = rich_user(scim)["id"]
        assert "password" not in ok(scim.get(f"/Users/{uid}"))
        assert "password" not in ok(scim.get(f"/Users/{uid}", params={"attributes": "password,userName"}))

    def test_projection_on_lists(self, scim: Scim) -> None:
        rich_user(scim)
        rich_user(scim)
        body = ok(scim.get("/Users", params={"attributes": "userName,active"}))
        assert body["totalResults"] == 2
        assert all(set(r) == {"schemas", "id", "userName", "active"} for r in body["Resources"])
        body = ok(scim.get("/Users", params={"excludedAttributes": "emails,meta"}))
        assert all("emails" not in r and "meta" not in r and "userName" in r for r in body["Resources"])

    def test_group_members_only_when_wanted(self, scim: Scim) -> None:
        uid = scim.user()["id"]
        gid = scim.group(members=[{"value": uid}])["id"]
        assert set(ok(scim.get(f"/Groups/{gid}", params={"attributes": "displayName"}))) == {
            "schemas",
            "id",
            "displayName",
        }
        body = ok(scim.get(f"/Groups/{gid}", params={"attributes": "members.value"}))
        assert body["members"] == [{"value": uid}]
        listed = ok(scim.get("/Groups", params={"excludedAttributes": "members"}))
        assert "members" not in listed["Resources"][0]

    def test_group_patch_with_attributes_answers_200_with_the_group(self, scim: Scim) -> None:
        uid = scim.user()["id"]
        gid = scim.group()["id"]
        ops = patch({"op": "add", "path": "members", "value": [{"value": uid}]})
        body = ok(scim.patch(f"/Groups/{gid}", ops, params={"excludedAttributes": "members"}))
        assert "members" not in body and body["meta"]["version"] == 'W/"2"'
        body = ok(scim.patch(f"/Groups/{gid}", ops, params={"attributes": "members"}))
        assert [m["value"] for m in body["members"]] == [uid]

    def test_user_patch_answers_200_with_the_user(self, scim: Scim) -> None:
        user = scim.user()
        gid = scim.group(members=[{"value": user["id"]}])["id"]
        resp = scim.patch(f"/Users/{user['id']}", patch({"op": "add", "path": "nickName", "value": "B"}))
        body = ok(resp)
        assert body["nickName"] == "B" and [g["value"] for g in body["groups"]] == [gid]
        assert resp.headers["Location"] == body["meta"]["location"]


class TestPaging:
    def test_count_is_clamped_and_negative_count_gives_totals_only(self, scim: Scim) -> None:
        scim.user()
        body = ok(scim.get("/Users", params={"count": str(MAX_RESULTS * 5)}))
        assert body["itemsPerPage"] == 1
        body = ok(scim.get("/Users", params={"count": "-3"}))
        assert body["totalResults"] == 1 and body["itemsPerPage"] == 0 and body["Resources"] == []
        body = ok(scim.get("/Users", params={"startIndex": "0"}))
        assert body["startIndex"] == 1 and body["itemsPerPage"] == 1

    def test_list_response_shape(self, scim: Scim) -> None:
        body = ok(scim.get("/Groups"))
        assert body == {
            "schemas": [LIST],
            "totalResults": 0,
            "startIndex": 1,
            "itemsPerPage": 0,
            "Resources": [],
        }

    def test_start_index_past_the_end(self, scim: Scim) -> None:
        scim.user()
        body = ok(scim.get("/Users", params={"startIndex": "5"}))
        assert body["totalResults"] == 1 and body["Resources"] == [] and body["startIndex"] == 5


class TestSearch:
    def test_users_search(self, scim: Scim) -> None:
        users = [scim.user(f"s{i}-{uniq()}@example.com") for i in range(3)]
        body = {
            "schemas": [SEARCH],
            "filter": 'userName sw "s"',
            "attributes": ["userName"],
            "startIndex": 2,
            "count": 5,
        }
        got = ok(scim.post("/Users/.search", body))
        assert got["totalResults"] == 3 and got["startIndex"] == 2
        assert [r["id"] for r in got["Resources"]] == [u["id"] for u in users[1:]]
        assert all(set(r) == {"schemas", "id", "userName"} for r in got["Resources"])

    def test_groups_search_with_excluded_members(self, scim: Scim) -> None:
        uid = scim.user()["id"]
        g = scim.group(members=[{"value": uid}])
        body = {
            "schemas": [SEARCH],
            "filter": f'displayName eq "{g["displayName"]}"',
            "excludedAttributes": "members",
        }
        got = ok(scim.post("/Groups/.search", body))
        assert got["totalResults"] == 1 and "members" not in got["Resources"][0]

    def test_root_search_spans_users_then_groups(self, scim: Scim) -> None:
        u = scim.user()
        g1, g2 = scim.group(), scim.group()
        got = ok(scim.post("/.search", {"schemas": [SEARCH]}))
        assert got["totalResults"] == 3
        assert [r["id"] for r in got["Resources"]] == [u["id"], g1["id"], g2["id"]]
        assert [r["meta"]["resourceType"] for r in got["Resources"]] == ["User", "Group", "Group"]
        page = ok(scim.post("/.search", {"schemas": [SEARCH], "startIndex": 2, "count": 1}))
        assert page["totalResults"] == 3 and [r["id"] for r in page["Resources"]] == [g1["id"]]
        only_users = ok(scim.post("/.search", {"filter": f'userName eq "{u["userName"]}"'}))
        assert [r["id"] for r in only_users["Resources"]] == [u["id"]]

    def test_search_errors(self, scim: Scim) -> None:
        assert_error(scim.post("/.search", {"filter": "nonsense eq"}), 400, "invalidFilter")
        assert_error(scim.post("/Users/.search", {"count": "many"}), 400, "invalidValue")
        assert_error(scim.post("/Users/.search", {"filter": 7}), 400, "invalidValue")


class TestDiscovery:
    def test_service_provider_config_tells_the_truth(self, scim: Scim) -> None:
        spc = ok(scim.get("/ServiceProviderConfig"))
        assert spc["patch"] == {"supported": True}
        assert spc["bulk"]["supported"] is False
        assert spc["filter"] == {"supported": True, "maxResults": MAX_RESULTS}
        assert spc["changePassword"] == {"supported": False}
        assert spc["sort"] == {"supported": False}
        assert spc["etag"] == {"supported": True}
        assert [a["type"] for a in spc["authenticationSchemes"]] == ["oauthbearertoken"]

    def test_resource_types(self, scim: Scim) -> None:
        listed = ok(scim.get("/ResourceTypes"))
        assert listed["totalResults"] == 2
        user = ok(scim.get("/ResourceTypes/User"))
        assert user["endpoint"] == "/Users" and user["schema"] == CORE_USER
        assert user["schemaExtensions"] == [{"schema": ENTERPRISE, "required": False}]
        assert ok(scim.get("/ResourceTypes/Group"))["schema"] == CORE_GROUP
        assert_error(scim.get("/ResourceTypes/Device"), 404)

    def test_schemas(self, scim: Scim) -> None:
        listed = ok(scim.get("/Schemas"))
        ids = [s["id"] for s in listed["Resources"]]
        assert set(ids) == {CORE_USER, ENTERPRISE, CORE_GROUP}
        for sid in ids:
            one = ok(scim.get(f"/Schemas/{sid}"))
            assert one["id"] == sid and one["attributes"]
            assert one["meta"]["location"].endswith(f"/scim/v2/Schemas/{sid}")
        password = next(
            a for a in ok(scim.get(f"/Schemas/{CORE_USER}"))["attributes"] if a["name"] == "password"
        )
        assert password["returned"] == "never"
        assert_error(scim.get("/Schemas/urn:nope"), 404)


def test_openapi_is_served(server: ServerThread) -> None:
    doc = httpx.get(f"{server.url}/scim/v2/openapi.json").json()
    assert "/scim/v2/Users" in doc["paths"] and "/scim/v2/Groups/{group_id}" in doc["paths"]
    assert "application/scim+json" in doc["paths"]["/scim/v2/Users"]["post"]["requestBody"]["content"]


@pytest.mark.parametrize("url", ["/Users", "/ServiceProviderConfig", "/Nope"])
def test_responses_are_scim_json(scim: Scim, url: str) -> None:
    assert scim.get(url).headers["content-type"] == SCIM_JSON
