"""Table-driven tests of the pure PATCH engine: every op form real clients send."""

from __future__ import annotations

from typing import Any

import pytest

from syncd.service.errors import InvalidFilter, InvalidPath, InvalidSyntax, InvalidValue, Mutability, NoTarget
from syncd.service.patch import MemberOp, apply_patch
from syncd.service.schema import ENTERPRISE_USER, GROUP, USER

ENT = ENTERPRISE_USER
BASE: dict[str, Any] = {
    "userName": "ada@example.com",
    "active": True,
    "displayName": "Ada",
    "name": {"givenName": "Ada", "familyName": "Lovelace"},
    "emails": [
        {"value": "ada@example.com", "type": "work", "primary": True},
        {"value": "ada@home.example", "type": "home"},
    ],
    ENT: {"employeeNumber": "1", "department": "R&D"},
}


def op(o: str, path: str | None = None, value: Any = None, **kw: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"op": o, **kw}
    if path is not None:
        d["path"] = path
    if value is not None:
        d["value"] = value
    return d


USER_CASES = [
    # (name, operations, expected changes as {dotted path: value} checked on the result)
    ("replace simple", [op("replace", "displayName", "Countess")], {"displayName": "Countess"}),
    ("op name capitalised", [op("Replace", "displayName", "X")], {"displayName": "X"}),
    ("op name upper", [op("REPLACE", "displayName", "X")], {"displayName": "X"}),
    ("attr name any case", [op("replace", "DISPLAYNAME", "X")], {"displayName": "X"}),
    ("active string False", [op("Replace", "active", "False")], {"active": False}),
    ("active string true", [op("replace", "active", "true")], {"active": True}),
    ("pathless active bool", [op("replace", value={"active": False})], {"active": False}),
    ("pathless active string", [op("Replace", value={"active": "False"})], {"active": False}),
    (
        "sub path",
        [op("replace", "name.givenName", "Augusta")],
        {"name.givenName": "Augusta", "name.familyName": "Lovelace"},
    ),
    ("add sub path", [op("add", "name.middleName", "King")], {"name.middleName": "King"}),
    (
        "remove sub path",
        [op("remove", "name.familyName")],
        {"name.familyName": None, "name.givenName": "Ada"},
    ),
    (
        "replace complex merges",
        [op("replace", "name", {"familyName": "King"})],
        {"name.givenName": "Ada", "name.familyName": "King"},
    ),
    (
        "pathless dotted keys",
        [op("replace", value={"displayName": "x", "name.givenName": "y"})],
        {"displayName": "x", "name.givenName": "y"},
    ),
    (
        "pathless URN key",
        [op("replace", value={f"{ENT}:employeeNumber": "z"})],
        {f"{ENT}.employeeNumber": "z", f"{ENT}.department": "R&D"},
    ),
    (
        "pathless URN object",
        [op("add", value={ENT: {"costCenter": "42"}})],
        {f"{ENT}.costCenter": "42", f"{ENT}.employeeNumber": "1"},
    ),
    ("URN path", [op("replace", f"{ENT}:employeeNumber", "7")], {f"{ENT}.employeeNumber": "7"}),
    ("URN path sub", [op("add", f"{ENT}:manager.value", "boss")], {f"{ENT}.manager": {"value": "boss"}}),
    ("URN path remove", [op("remove", f"{ENT}:department")], {f"{ENT}.department": None}),
    (
        "core URN path",
        [op("replace", "urn:ietf:params:scim:schemas:core:2.0:User:name.familyName", "B")],
        {"name.familyName": "B"},
    ),
    ("remove simple", [op("remove", "displayName")], {"displayName": None}),
    (
        "filter replace sub",
        [op("replace", 'emails[type eq "work"].value', "a@new.example")],
        {
            "emails": [
                {"value": "a@new.example", "type": "work", "primary": True},
                {"value": "ada@home.example", "type": "home"},
            ]
        },
    ),
    (
        "filter on primary",
        [op("replace", "emails[primary eq true].value", "p@x.example")],
        {
            "emails": [
                {"value": "p@x.example", "type": "work", "primary": True},
                {"value": "ada@home.example", "type": "home"},
            ]
        },
    ),
    (
        "filter no match creates (Entra)",
        [op("replace", 'emails[type eq "other"].value', "o@x.example")],
        {
            "emails": [
                {"value": "ada@example.com", "type": "work", "primary": True},
                {"value": "ada@home.example", "type": "home"},
                {"type": "other", "value": "o@x.example"},
            ]
        },
    ),
    (
        "filter add no match creates",
        [op("Add", 'emails[type eq "other"].value', "o@x.example")],
        {
            "emails": [
                {"value": "ada@example.com", "type": "work", "primary": True},
                {"value": "ada@home.example", "type": "home"},
                {"type": "other", "value": "o@x.example"},
            ]
        },
    ),
    (
        "filter remove element",
        [op("remove", 'emails[type eq "home"]')],
        {"emails": [{"value": "ada@example.com", "type": "work", "primary": True}]},
    ),
    ("filter remove no match is no-op", [op("remove", 'emails[type eq "fax"]')], {"emails": BASE["emails"]}),
    (
        "add multi appends",
        [op("add", "emails", [{"value": "n@x.example", "type": "other"}])],
        {"emails": [*BASE["emails"], {"value": "n@x.example", "type": "other"}]},
    ),
    (
        "add multi dedupes by value",
        [op("add", "emails", [{"value": "ADA@example.com", "type": "work"}])],
        {
            "emails": [
                {"value": "ADA@example.com", "type": "work", "primary": True},
                {"value": "ada@home.example", "type": "home"},
            ]
        },
    ),
    (
        "add primary demotes others",
        [op("add", "emails", [{"value": "n@x.example", "primary": True}])],
        {
            "emails": [
                {"value": "ada@example.com", "type": "work", "primary": False},
                {"value": "ada@home.example", "type": "home", "primary": False},
                {"value": "n@x.example", "primary": True},
            ]
        },
    ),
    (
        "filtered primary set by a string in any case demotes others",
        [op("replace", 'emails[type eq "home"].primary', "TRUE")],
        {
            "emails": [
                {"value": "ada@example.com", "type": "work", "primary": False},
                {"value": "ada@home.example", "type": "home", "primary": True},
            ]
        },
    ),
    (
        "filtered element replaced with primary demotes others",
        [op("replace", 'emails[type eq "home"]', {"primary": "true"})],
        {
            "emails": [
                {"value": "ada@example.com", "type": "work", "primary": False},
                {"value": "ada@home.example", "type": "home", "primary": True},
            ]
        },
    ),
    (
        "add multi single object",
        [op("add", "phoneNumbers", {"value": "+1", "type": "work"})],
        {"phoneNumbers": [{"value": "+1", "type": "work"}]},
    ),
    (
        "replace multi whole",
        [op("replace", "emails", [{"value": "only@x.example"}])],
        {"emails": [{"value": "only@x.example"}]},
    ),
    (
        "remove multi with value list",
        [op("remove", "emails", [{"value": "ada@home.example"}])],
        {"emails": [{"value": "ada@example.com", "type": "work", "primary": True}]},
    ),
    ("remove multi whole", [op("remove", "emails")], {"emails": None}),
    (
        "several ops in order",
        [op("replace", "displayName", "A"), op("replace", "displayName", "B"), op("add", "title", "Eng")],
        {"displayName": "B", "title": "Eng"},
    ),
    (
        "okta id echoed is ignored",
        [op("replace", value={"id": "u1", "displayName": "Q"})],
        {"displayName": "Q"},
    ),
    ("password accepted not stored", [op("replace", "password", "s3cret")], {"password": None}),
    (
        "unknown pathless key ignored",
        [op("replace", value={"displayName": "x", "schemas": ["a"], "meta": {}})],
        {"displayName": "x"},
    ),
]


def dig(d: dict[str, Any], dotted: str) -> Any:
    if dotted.startswith("urn:"):
        urn, _, rest = dotted.rpartition(".")
        cur: Any = d.get(urn) or {}
        return cur.get(rest) if rest else cur
    cur = d
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


@pytest.mark.parametrize(("ops", "expect"), [c[1:] for c in USER_CASES], ids=[c[0] for c in USER_CASES])
def test_user_patch_forms(ops: list[dict[str, Any]], expect: dict[str, Any]) -> None:
    out = apply_patch(USER, BASE, ops, current_id="u1")
    for path, value in expect.items():
        assert dig(out.data, path) == value, path
    assert out.member_ops == []


def test_patch_does_not_mutate_input() -> None:
    before = repr(BASE)
    apply_patch(USER, BASE, [op("replace", 'emails[type eq "work"].value', "z@z.example")], current_id="u1")
    assert repr(BASE) == before


ERROR_CASES = [
    ("bad op", [op("move", "displayName", "x")], InvalidSyntax),
    ("not a list", {"op": "add"}, InvalidSyntax),
    ("empty list", [], InvalidSyntax),
    ("remove without path", [op("remove")], NoTarget),
    ("pathless with non-object", [op("replace", value="x")], InvalidValue),
    ("unknown attribute", [op("replace", "shoeSize", "9")], InvalidPath),
    ("unknown sub attribute", [op("replace", "name.shoeSize", "9")], InvalidPath),
    ("malformed path", [op("replace", "emails[type eq", "x")], InvalidPath),
    ("filter on single-valued", [op("replace", 'name[givenName eq "a"]', "x")], InvalidPath),
    ("readOnly id", [op("replace", "id", "other")], Mutability),
    ("pathless other id", [op("replace", value={"id": "other"})], Mutability),
    ("readOnly groups", [op("add", "groups", [{"value": "g"}])], Mutability),
    ("bad boolean", [op("replace", "active", "maybe")], InvalidValue),
    ("remove required userName", [op("remove", "userName")], InvalidValue),
    ("replace without value", [{"op": "replace", "path": "displayName"}], InvalidValue),
    ("string given an object", [op("replace", "displayName", {"a": 1})], InvalidValue),
    ("filter with no seed", [op("replace", 'emails[value co "zzz"].type', "work")], NoTarget),
    ("unknown schema urn", [op("replace", "urn:example:custom:1.0:User:foo", "x")], InvalidPath),
]


@pytest.mark.parametrize(("ops", "error"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_user_patch_errors(ops: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        apply_patch(USER, BASE, ops, current_id="u1")


GROUP_BASE = {"displayName": "Eng", "externalId": "g-1"}

MEMBER_CASES = [
    (
        "add list (Entra)",
        [op("Add", "members", [{"$ref": None, "value": "u1"}, {"value": "u2"}])],
        [MemberOp("add", ("u1", "u2"))],
    ),
    (
        "add single object",
        [op("add", "members", {"value": "u1", "display": "x"})],
        [MemberOp("add", ("u1",), (("u1", "x"),))],  # display: immutable, kept (RFC 7643 §2.4)
    ),
    ("add dedupes", [op("add", "members", [{"value": "u1"}, {"value": "u1"}])], [MemberOp("add", ("u1",))]),
    (
        "remove list (Entra default)",
        [op("Remove", "members", [{"value": "u1"}])],
        [MemberOp("remove", ("u1",))],
    ),
    (
        "remove filter (Okta, aadOptscim062020)",
        [op("remove", 'members[value eq "u1"]')],
        [MemberOp("remove", ("u1",))],
    ),
    (
        "remove filter or",
        [op("remove", 'members[value eq "u1" or value eq "u2"]')],
        [MemberOp("remove", ("u1", "u2"))],
    ),
    ("remove all", [op("remove", "members")], [MemberOp("clear")]),
    ("replace all", [op("replace", "members", [{"value": "u3"}])], [MemberOp("replace", ("u3",))]),
    (
        "URN members path",
        [op("add", "urn:ietf:params:scim:schemas:core:2.0:Group:members", [{"value": "u1"}])],
        [MemberOp("add", ("u1",))],
    ),
    (
        "pathless members",
        [op("replace", value={"members": [{"value": "u1"}]})],
        [MemberOp("replace", ("u1",))],
    ),
    (
        "in order",
        [op("add", "members", [{"value": "u1"}]), op("remove", 'members[value eq "u2"]')],
        [MemberOp("add", ("u1",)), MemberOp("remove", ("u2",))],
    ),
]


@pytest.mark.parametrize(("ops", "expect"), [c[1:] for c in MEMBER_CASES], ids=[c[0] for c in MEMBER_CASES])
def test_group_member_ops(ops: list[dict[str, Any]], expect: list[MemberOp]) -> None:
    out = apply_patch(GROUP, GROUP_BASE, ops, current_id="g1")
    assert out.member_ops == expect
    assert out.data == GROUP_BASE


def test_okta_rename_with_read_only_id() -> None:
    out = apply_patch(
        GROUP, GROUP_BASE, [op("replace", value={"id": "g1", "displayName": "Engineering"})], current_id="g1"
    )
    assert out.data["displayName"] == "Engineering"


@pytest.mark.parametrize(
    ("ops", "error"),
    [
        ([op("add", "members", [{"value": "g2", "type": "Group"}])], InvalidValue),
        ([op("add", "members", [{"display": "no value"}])], InvalidValue),
        ([op("add", "members", "u1")], InvalidValue),
        ([op("remove", 'members[display eq "x"]')], InvalidFilter),
        ([op("replace", 'members[value eq "u1"].display', "x")], InvalidPath),
        ([op("remove", "displayName")], InvalidValue),
    ],
    ids=[
        "nested group refused",
        "member without value",
        "member not object",
        "unsupported member filter",
        "member sub-attribute",
        "required displayName",
    ],
)
def test_group_patch_errors(ops: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        apply_patch(GROUP, GROUP_BASE, ops, current_id="g1")
