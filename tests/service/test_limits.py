"""Contract: the service's text limits (`syncd.service.limits`), identical on SQLite and
PostgreSQL, through every write path (create, replace, patch, bulk) and every lookup."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import Engine

from syncd.service import bulk, teams, tokens, users
from syncd.service.errors import InvalidFilter, InvalidValue, NotFound
from syncd.service.limits import MAX_VALUES, NAME_MAX, TEXT_MAX, TYPE_MAX
from syncd.service.schema import ENTERPRISE_USER
from syncd.store import session_scope
from tests.service.helpers import ENTRA, make_user, setup_dirs

#: (what, attributes added to a valid user, the attribute the error must name)
REFUSED_USERS: list[tuple[str, dict[str, Any], str]] = [
    ("NUL in a JSON attribute", {"title": "a\x00b"}, "title"),
    ("ESC in an extension attribute", {ENTERPRISE_USER: {"department": "\x1b[31mred"}}, "department"),
    ("NUL in a nested value", {ENTERPRISE_USER: {"manager": {"value": "m\x00"}}}, "manager.value"),
    ("a C1 control", {"nickName": "a\x85b"}, "nickName"),
    ("DEL", {"displayName": "a\x7fb"}, "displayName"),
    ("a lone surrogate", {"locale": "en\ud800"}, "locale"),
    ("NUL in an email", {"emails": [{"value": "a\x00@x"}]}, "emails[0].value"),
    ("a newline in a single-line value", {"addresses": [{"streetAddress": "1\n2"}]}, "streetAddress"),
    ("a tab in userName", {"userName": "a\tb"}, "userName"),
    ("a whitespace-only userName", {"userName": " \u3000 "}, "userName"),
    ("a userName over the limit", {"userName": "u" * (NAME_MAX + 1)}, "userName"),
    ("a 1.5 MB userName", {"userName": "u" * 1_500_000}, "userName"),
    ("a userName whose casefold is over the limit", {"userName": "ß" * 300}, "userName"),
    ("an externalId over the limit", {"externalId": "e" * (NAME_MAX + 1)}, "externalId"),
    ("a 1.5 MB externalId", {"externalId": "e" * 1_500_000}, "externalId"),
    ("a givenName over the column", {"name": {"givenName": "g" * (NAME_MAX + 1)}}, "givenName"),
    ("a string over the text limit", {"title": "t" * (TEXT_MAX + 1)}, "title"),
    ("an email type over its column", {"emails": [{"value": "a@x", "type": "t" * (TYPE_MAX + 1)}]}, "type"),
    ("too many values", {"emails": [{"value": f"{i}@x"} for i in range(MAX_VALUES + 1)]}, "emails"),
]

#: values at the limits: accepted, stored and read back the same on both stores
MAXIMAL: dict[str, Any] = {
    "userName": "ß" * (NAME_MAX // 2),  # its casefold ("ss" * 256) fills the key column exactly
    "externalId": "ß" * NAME_MAX,  # caseExact: no key column, counted as written
    "displayName": "D" * NAME_MAX,
    "name": {"givenName": "İ" * (NAME_MAX // 2), "familyName": "f" * NAME_MAX},
    "title": "t" * TEXT_MAX,
    "emails": [{"value": "e" * (NAME_MAX - 2) + "@x", "type": "w" * TYPE_MAX, "primary": True}],
    "addresses": [{"formatted": "1 Main St\n\tSpringfield\r\n", "type": "work"}],
}


@pytest.fixture
def eng(engine: Engine) -> Engine:
    setup_dirs(engine)
    return engine


def _body(extra: dict[str, Any]) -> dict[str, Any]:
    return {"userName": "ok@example.com", **extra}


@pytest.mark.parametrize(("what", "extra", "attr"), REFUSED_USERS, ids=[c[0] for c in REFUSED_USERS])
def test_create_replace_and_bulk_refuse_with_invalid_value_naming_the_attribute(
    eng: Engine, what: str, extra: dict[str, Any], attr: str
) -> None:
    uid = make_user(eng, "kept@example.com", title="before")
    with pytest.raises(InvalidValue, match=re.escape(attr)), session_scope(eng) as s:
        users.create_user(s, actor=ENTRA, body=_body(extra))
    with pytest.raises(InvalidValue, match=re.escape(attr)), session_scope(eng) as s:
        users.replace_user(s, actor=ENTRA, user_id=uid, body=_body(extra))
    with pytest.raises(InvalidValue, match=re.escape(attr)), session_scope(eng) as s:
        bulk.create_users(s, actor=ENTRA, bodies=[_body({"userName": "a@x"}), _body(extra)])
    with session_scope(eng, write=False) as s:
        assert users.list_users(s, actor=ENTRA).total == 1
        assert users.get_user(s, actor=ENTRA, user_id=uid).data["title"] == "before"


@pytest.mark.parametrize(
    ("ops", "attr"),
    [
        ([{"op": "replace", "path": "title", "value": "a\x00b"}], "title"),
        ([{"op": "add", "value": {"nickName": "\x1b]8;;http://x\x1b\\"}}], "nickName"),
        ([{"op": "replace", "path": f"{ENTERPRISE_USER}:department", "value": "d\x00"}], "department"),
        ([{"op": "add", "path": 'emails[type eq "work"].value', "value": "x\x00"}], "value"),
        ([{"op": "replace", "path": "userName", "value": "ß" * 300}], "userName"),
        ([{"op": "replace", "path": "userName", "value": "\t "}], "userName"),
        ([{"op": "replace", "value": {"name.familyName": "f" * (NAME_MAX + 1)}}], "familyName"),
    ],
)
def test_patch_refuses_with_invalid_value_and_changes_nothing(
    eng: Engine, ops: list[dict[str, Any]], attr: str
) -> None:
    uid = make_user(eng, "p@example.com", title="before")
    with pytest.raises(InvalidValue, match=re.escape(attr)), session_scope(eng) as s:
        users.patch_user(s, actor=ENTRA, user_id=uid, operations=ops)
    with session_scope(eng, write=False) as s:
        row = users.get_user(s, actor=ENTRA, user_id=uid)
    assert (row.version, row.data["title"], row.user_name) == (1, "before", "p@example.com")


def test_values_at_the_limits_are_stored_and_read_back_on_both_stores(eng: Engine) -> None:
    with session_scope(eng) as s:
        uid = users.create_user(s, actor=ENTRA, body=dict(MAXIMAL)).id
    with session_scope(eng, write=False) as s:
        row = users.get_user(s, actor=ENTRA, user_id=uid)
        assert users.list_users(s, actor=ENTRA, filter=f'userName eq "{"SS" * (NAME_MAX // 2)}"').total == 1
    assert row.user_name == MAXIMAL["userName"] and row.external_id == MAXIMAL["externalId"]
    assert row.data["addresses"][0]["formatted"] == "1 Main St\n\tSpringfield\r\n"
    with session_scope(eng) as s:
        tid = teams.create_team(s, actor=ENTRA, body={"displayName": "ß" * (NAME_MAX // 2)}).id
        teams.patch_team(
            s,
            actor=ENTRA,
            team_id=tid,
            operations=[{"op": "add", "path": "members", "value": [{"value": uid}]}],
        )


@pytest.mark.parametrize(
    ("name", "attr"),
    [
        ("g\x00", "displayName"),
        ("   ", "displayName"),
        ("ß" * 300, "displayName"),
        ("x" * 1_500_000, "displayName"),
    ],
)
def test_groups_refuse_the_same_on_create_patch_and_bulk(eng: Engine, name: str, attr: str) -> None:
    with session_scope(eng) as s:
        tid = teams.create_team(s, actor=ENTRA, body={"displayName": "kept"}).id
    with pytest.raises(InvalidValue, match=re.escape(attr)), session_scope(eng) as s:
        teams.create_team(s, actor=ENTRA, body={"displayName": name})
    with pytest.raises(InvalidValue, match=re.escape(attr)), session_scope(eng) as s:
        teams.patch_team(
            s, actor=ENTRA, team_id=tid, operations=[{"op": "replace", "path": "displayName", "value": name}]
        )
    with pytest.raises(InvalidValue, match=re.escape(attr)), session_scope(eng) as s:
        bulk.create_teams(s, actor=ENTRA, bodies=[{"displayName": name}])
    with session_scope(eng, write=False) as s:
        assert teams.get_team(s, actor=ENTRA, team_id=tid).display_name == "kept"


def test_json_filters_keep_working_after_a_nul_was_refused(eng: Engine) -> None:
    """The reported defect: on PostgreSQL one stored U+0000 made every JSON filter of the
    directory fail."""
    make_user(
        eng, "a@example.com", title="Engineer", nickName="ada", **{ENTERPRISE_USER: {"department": "R&D"}}
    )
    with pytest.raises(InvalidValue), session_scope(eng) as s:
        users.create_user(s, actor=ENTRA, body=_body({"title": "a\u0000b"}))
    with session_scope(eng, write=False) as s:
        for flt in ('title eq "Engineer"', 'nickName sw "ad"', f'{ENTERPRISE_USER}:department eq "R&D"'):
            assert users.list_users(s, actor=ENTRA, filter=flt).total == 1, flt


def test_lookups_with_unstorable_text_are_answered_without_the_store(eng: Engine) -> None:
    uid = make_user(eng, "a@example.com")
    with session_scope(eng) as s:
        tid = teams.create_team(s, actor=ENTRA, body={"displayName": "g", "members": [{"value": uid}]}).id
    with session_scope(eng, write=False) as s:
        with pytest.raises(NotFound):
            users.get_user(s, actor=ENTRA, user_id="a\x00b")
        with pytest.raises(NotFound):
            teams.get_team(s, actor=ENTRA, team_id="\ud800")
        assert users.find_user(s, actor=ENTRA, external_id="e\x00") is None
        with pytest.raises(InvalidFilter, match="NUL"):
            users.list_users(s, actor=ENTRA, filter='title eq "a\\u0000b"')
        with pytest.raises(InvalidFilter, match="U\\+001B"):
            users.list_users(s, actor=ENTRA, filter='title eq "a\\u001bb"')
        with pytest.raises(InvalidFilter, match="U\\+0000"):
            users.list_users(s, actor=ENTRA, filter='title eq "a\x00b"')
    with pytest.raises(InvalidValue, match="unknown members"), session_scope(eng) as s:
        teams.change_members(s, actor=ENTRA, team_id=tid, add=["u\x00"])
    with session_scope(eng) as s:
        assert teams.change_members(s, actor=ENTRA, team_id=tid, remove=["u\x00"]) == ([], [])


def test_token_names_follow_the_same_rules(eng: Engine) -> None:
    for name, rule in [("ci\x1b[2J", "U\\+001B"), ("n" * 257, "257 characters")]:
        with pytest.raises(InvalidValue, match=rule), session_scope(eng) as s:
            tokens.create_token(s, directory="entra", name=name)
    with session_scope(eng) as s:
        tokens.create_token(s, directory="entra", name="n" * 256)
