"""The filter matrix over HTTP (every operator, value paths, case rules), PATCH forms, and
concurrent group PATCHes that must not lose members."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine

from connectors.testing.server import ServerThread
from tests.scim.conftest import client_for, new_token
from tests.scim.helpers import CORE_USER, ENTERPRISE, Scim, assert_error, ok, patch, uniq


@dataclass
class Data:
    scim: Scim
    ids: dict[str, str]  # short name → id
    group: str


@pytest.fixture(scope="module")
def data(server: ServerThread, store: Engine) -> Iterator[Data]:
    """Three users and a group in a directory of this module's own."""
    directory = f"m-{uuid.uuid4().hex[:10]}"
    with client_for(server, new_token(store, directory)) as c:
        scim = Scim(c, directory)
        ids = {
            "alice": scim.user(
                "alice@example.com",
                externalId="e-1",
                displayName="Alice Smith",
                title="Engineer",
                name={"givenName": "Alice", "familyName": "Smith"},
                emails=[{"value": "alice@example.com", "type": "work", "primary": True}],
                **{ENTERPRISE: {"department": "R&D"}},
            )["id"],
            "bob": scim.user(
                "bob@example.com",
                displayName="Bob Jones",
                title="Manager",
                active=False,
                emails=[{"value": "bob@home.io", "type": "home"}],
            )["id"],
            "carol": scim.user("carol@example.org", displayName="Carol")["id"],
        }
        group = scim.group("Team Alpha", members=[{"value": ids["alice"]}, {"value": ids["bob"]}])["id"]
        yield Data(scim, ids, group)


USER_FILTERS = [
    ('userName eq "ALICE@example.com"', {"alice"}),
    ('USERNAME Eq "alice@example.com"', {"alice"}),
    ('userName ne "alice@example.com"', {"bob", "carol"}),
    ('userName co "EXAMPLE.COM"', {"alice", "bob"}),
    ('userName sw "car"', {"carol"}),
    ('userName ew ".org"', {"carol"}),
    ('userName gt "b"', {"bob", "carol"}),
    ('userName ge "bob@example.com"', {"bob", "carol"}),
    ('userName lt "b"', {"alice"}),
    ('userName le "bob@example.com"', {"alice", "bob"}),
    ("title pr", {"alice", "bob"}),
    ("not (title pr)", {"carol"}),
    ("active eq false", {"bob"}),
    ('active eq "True" and title pr', {"alice"}),
    ('(title eq "engineer") or (userName sw "car")', {"alice", "carol"}),
    ('emails[type eq "work" and value co "alice"]', {"alice"}),
    ('emails.value ew "HOME.io"', {"bob"}),
    ('emails.type eq "home"', {"bob"}),
    ('name.givenName eq "alice"', {"alice"}),
    ('externalId eq "e-1"', {"alice"}),
    ('externalId eq "E-1"', set()),  # caseExact
    (f'{ENTERPRISE}:department eq "r&d"', {"alice"}),
    (f'{CORE_USER}:displayName sw "bob"', {"bob"}),
    ('displayName co "o" and not (userName ew ".org")', {"bob"}),
    ('meta.lastModified gt "2000-01-01T00:00:00Z"', {"alice", "bob", "carol"}),
]


@pytest.mark.parametrize(("flt", "expected"), USER_FILTERS, ids=[f for f, _ in USER_FILTERS])
def test_user_filters(data: Data, flt: str, expected: set[str]) -> None:
    body = data.scim.filter("/Users", flt)
    names = {k for k, v in data.ids.items() if v in {r["id"] for r in body["Resources"]}}
    assert names == expected
    assert body["totalResults"] == len(expected)


def test_group_filters(data: Data) -> None:
    alice, carol = data.ids["alice"], data.ids["carol"]
    for flt, hit in [
        ('displayName eq "team alpha"', True),
        ('displayName co "ALPH"', True),
        (f'members[value eq "{alice}"]', True),
        (f'members.value eq "{alice}"', True),
        (f'members[value eq "{carol}"]', False),
        ('displayName eq "Team Beta"', False),
    ]:
        body = data.scim.filter("/Groups", flt, excludedAttributes="members")
        assert [r["id"] for r in body["Resources"]] == ([data.group] if hit else []), flt


@pytest.mark.parametrize("flt", ['userName eq "a" or', "(userName pr", 'roles eq "x"', 'groups.value eq "g"'])
def test_unsupported_filters_are_errors_not_everything(data: Data, flt: str) -> None:
    assert_error(data.scim.get("/Users", params={"filter": flt}), 400, "invalidFilter")


def test_patch_forms_on_a_user(scim: Scim) -> None:
    uid = scim.user(emails=[{"value": "w@example.com", "type": "work", "primary": True}])["id"]
    ops = patch(
        {"op": "add", "path": "emails", "value": [{"value": "h@example.com", "type": "home"}]},
        {"op": "replace", "path": f"{ENTERPRISE}:manager.value", "value": "boss-id"},
        {
            "op": "add",
            "value": {"nickName": "Nick", "name.familyName": "Fam", f"{ENTERPRISE}:costCenter": "42"},
        },
        {"op": "remove", "path": 'emails[type eq "work"]'},
    )
    user = ok(scim.patch(f"/Users/{uid}", ops))
    assert user["emails"] == [{"value": "h@example.com", "type": "home"}]
    assert user[ENTERPRISE] == {"manager": {"value": "boss-id"}, "costCenter": "42"}
    assert user["nickName"] == "Nick" and user["name"] == {"familyName": "Fam"}
    user = ok(scim.patch(f"/Users/{uid}", patch({"op": "remove", "path": ENTERPRISE})))
    assert ENTERPRISE not in user and user["schemas"] == [CORE_USER]


def test_patch_members_with_a_core_urn_path_and_remove_all(scim: Scim) -> None:
    u1, u2 = scim.user()["id"], scim.user()["id"]
    gid = scim.group()["id"]
    urn_path = "urn:ietf:params:scim:schemas:core:2.0:Group:members"
    add = patch({"op": "add", "path": urn_path, "value": [{"value": u1}, {"value": u2}]})
    assert scim.patch(f"/Groups/{gid}", add).status_code == 204
    assert scim.member_ids(gid) == sorted([u1, u2])
    assert scim.patch(f"/Groups/{gid}", patch({"op": "remove", "path": "members"})).status_code == 204
    assert scim.member_ids(gid) == []


def test_user_name_clash_on_patch_is_409(scim: Scim) -> None:
    taken = scim.user()["userName"]
    uid = scim.user()["id"]
    ops = patch({"op": "replace", "path": "userName", "value": taken.upper()})
    assert_error(scim.patch(f"/Users/{uid}", ops), 409, "uniqueness")


def test_concurrent_member_adds_lose_nothing(server: ServerThread, store: Engine, scim: Scim) -> None:
    """Entra and Okta push member changes to one group at once: every add must survive."""
    users = [scim.user()["id"] for _ in range(16)]
    gid = scim.group()["id"]
    secret = scim.http.headers["Authorization"].removeprefix("Bearer ")

    def add(uid: str) -> int:
        with client_for(server, secret) as c:
            body = patch({"op": "add", "path": "members", "value": [{"value": uid}]})
            return c.patch(f"/Groups/{gid}", json=body).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(add, users)) == {204}
    group = ok(scim.get(f"/Groups/{gid}"))
    assert sorted(m["value"] for m in group["members"]) == sorted(users)
    assert group["meta"]["version"] == f'W/"{1 + len(users)}"'


def test_concurrent_creates_of_one_user_name_give_one_201_and_409s(server: ServerThread, scim: Scim) -> None:
    name = f"{uniq()}@race.example"
    secret = scim.http.headers["Authorization"].removeprefix("Bearer ")

    def create(_: int) -> int:
        with client_for(server, secret) as c:
            return c.post("/Users", json={"userName": name}).status_code

    with ThreadPoolExecutor(6) as pool:
        codes = sorted(pool.map(create, range(6)))
    assert codes == [201] + [409] * 5
