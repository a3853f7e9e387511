"""Filters translated to SQL, run against real rows on SQLite and PostgreSQL.

Each case names the exact set of ids a filter must return from the rows built by `store`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from syncd.service.errors import InvalidFilter
from syncd.service.filters import MAX_DEPTH, escape_like, parse_filter, team_condition, user_condition
from syncd.service.schema import GROUP
from syncd.store.models import Membership, Team, User, UserEmail

ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
MEMBER_VALUE_CASE_EXACT = GROUP.core.attr("members").child("value").case_exact  # type: ignore[union-attr]

# id: (userName, externalId, displayName, givenName, familyName, active, data)
USERS: dict[str, tuple[str, str | None, str | None, str | None, str | None, bool, dict[str, Any]]] = {
    "u1": (
        "BJensen",
        "EXT-1",
        "Barbara Jensen",
        "Barbara",
        "Jensen",
        True,
        {
            "title": "Tour Guide",
            "nickName": "Babs",
            "userType": "Employee",
            "locale": "en-US",
            "profileUrl": "https://login.example.com/bjensen",
            "name": {
                "givenName": "Barbara",
                "familyName": "Jensen",
                "middleName": "Jane",
                "formatted": "Ms. Barbara J Jensen III",
            },
            ENT: {
                "employeeNumber": "701984",
                "costCenter": "4130",
                "department": "Tour Operations",
                "manager": {"value": "u2", "displayName": "John Smith"},
            },
        },
    ),
    "u2": (
        "jsmith",
        "ext-1",
        "John Smith",
        "John",
        "Smith",
        False,
        {
            "title": "Manager",
            "userType": "Contractor",
            ENT: {"employeeNumber": "1001", "department": "Sales", "organization": "ACME"},
        },
    ),
    "u3": ("alice_b", "A%1", "Alice Brown", "Alice", "Brown", True, {"title": "100% Engineer"}),
    "u4": ("alicexb", None, None, None, None, True, {"title": "100x Engineer"}),
    "u5": ("back\\slash", None, "Back Slash", None, None, True, {"title": "a\\b"}),
    "u6": ("Émile", None, "Émile Zola", None, None, True, {"title": "Écrivain"}),
    "u7": ("nobody", None, None, None, None, True, {}),
    "u8": ("Straße", None, None, None, None, True, {"title": ""}),
    "u9": ("nulls", None, None, None, None, True, {"title": None, "name": {"givenName": None}}),
    "u10": ("ZED", None, None, None, None, True, {"title": "zebra", "userType": "employee"}),
}
# user id: [(value, type, primary)]
EMAILS = {
    "u1": [("bjensen@example.com", "work", True), ("babs@jensen.org", "home", False)],
    "u2": [("John@EXAMPLE.com", "work", True)],
    "u3": [("alice_b@corp.test", "Work", False)],
    "u4": [("alicexb@corp.test", None, False)],
}
# id: (displayName, externalId, member ids)
TEAMS = {
    "t1": ("Admins", "G-1", ["u1", "u2"]),
    "t2": ("Sales Team", "g-1", ["u2"]),
    "t3": ("100% Club", None, []),
    "t4": ("Équipe_A", None, ["u3", "u4"]),
    "t5": ("ÉquipeXA", None, []),
}
ALL_USERS = frozenset(USERS)
ALL_TEAMS = frozenset(TEAMS)


def _n(ident: str) -> int:
    return int(ident[1:])


@pytest.fixture
def store(engine: Engine) -> Engine:
    with Session(engine) as s:
        for uid, (user_name, ext, display, given, family, active, data) in USERS.items():
            s.add(
                User(
                    id=uid,
                    external_id=ext,
                    user_name=user_name,
                    user_name_key=user_name.casefold(),
                    display_name=display,
                    given_name=given,
                    family_name=family,
                    active=active,
                    data=data,
                    version=_n(uid),
                    created_at=datetime(2020, _n(uid), 1, tzinfo=UTC),
                    updated_at=datetime(2024, _n(uid), 15, 12, tzinfo=UTC),
                )
            )
        for tid, (display, ext, _members) in TEAMS.items():
            s.add(
                Team(
                    id=tid,
                    external_id=ext,
                    display_name=display,
                    display_name_key=display.casefold(),
                    created_at=datetime(2021, _n(tid), 1, tzinfo=UTC),
                    updated_at=datetime(2025, _n(tid), 1, tzinfo=UTC),
                )
            )
        s.flush()
        for uid, emails in EMAILS.items():
            for value, type_, primary in emails:
                s.add(
                    UserEmail(
                        user_id=uid, value=value, value_key=value.casefold(), type=type_, primary=primary
                    )
                )
        for tid, (_d, _e, members) in TEAMS.items():
            for uid in members:
                s.add(Membership(team_id=tid, user_id=uid, source="scim"))
        s.commit()
    return engine


def user_ids(engine: Engine, text: str) -> set[str]:
    with Session(engine) as s:
        return set(s.scalars(select(User.id).where(user_condition(parse_filter(text)))))


def team_ids(engine: Engine, text: str) -> set[str]:
    with Session(engine) as s:
        return set(s.scalars(select(Team.id).where(team_condition(parse_filter(text)))))


def U(*ns: int) -> set[str]:
    return {f"u{n}" for n in ns}


USER_CASES = [
    # id, externalId: caseExact columns
    ('id eq "u1"', U(1)),
    ('ID Eq "u1"', U(1)),
    ('id eq "U1"', U()),
    ('id sw "u1"', U(1, 10)),
    ('id ew "0"', U(10)),
    ('id co "U"', U()),  # LIKE is case-insensitive on SQLite: the exact check must hold
    ('id gt "u5"', U(6, 7, 8, 9)),  # code-point order: "u10" < "u5"
    ('id ne "u1"', ALL_USERS - U(1)),
    ('externalId eq "EXT-1"', U(1)),
    ('externalid eq "ext-1"', U(2)),
    ('externalId eq "Ext-1"', U()),
    ('externalId sw "ext"', U(2)),
    ('externalId ew "T-1"', U(1)),
    ('externalId co "%"', U(3)),
    ("externalId pr", U(1, 2, 3)),
    ('externalId ne "EXT-1"', ALL_USERS - U(1)),  # absent counts as ne
    ("externalId eq null", ALL_USERS - U(1, 2, 3)),
    ("externalId ne null", U(1, 2, 3)),
    # userName: the casefolded key column
    ('userName eq "bjensen"', U(1)),
    ('USERNAME EQ "BJENSEN"', U(1)),
    (f'{CORE}:userName eq "JSmith"', U(2)),
    ('userName eq "STRASSE"', U(8)),  # casefold, not lower: ß == ss
    ('userName eq "ÉMILE"', U(6)),
    ('userName sw "alice_"', U(3)),  # `_` is not a wildcard
    ('userName sw "alice"', U(3, 4)),
    ('userName co "\\\\"', U(5)),  # a backslash, the LIKE escape character
    ('userName ew "SLASH"', U(5)),
    ('userName gt "x"', U(6, 10)),  # "zed", "émile" (é > x in code points)
    ('userName lt "b"', U(3, 4)),
    ('userName le "alicexb"', U(3, 4)),
    ('userName ge "nulls"', U(6, 8, 9, 10)),
    ('userName ne "bjensen"', ALL_USERS - U(1)),
    ("userName pr", ALL_USERS),
    # displayName, name.givenName, name.familyName: columns with lower()
    ('displayName eq "barbara jensen"', U(1)),
    ('displayName co "SMITH"', U(2)),
    ("displayName pr", U(1, 2, 3, 5, 6)),
    ('name.givenName eq "BARBARA"', U(1)),
    ('NAME.GIVENNAME sw "a"', U(3)),
    ('name.familyName sw "s"', U(2)),
    (f'{CORE}:name.familyName eq "jensen"', U(1)),
    ("name.givenName pr", U(1, 2, 3)),
    ('name.givenName ne "barbara"', ALL_USERS - U(1)),
    # active: boolean column
    ("active eq true", ALL_USERS - U(2)),
    ("active eq false", U(2)),
    ("active ne true", U(2)),
    ('active eq "False"', U(2)),
    ('ACTIVE EQ TRUE and userName sw "b"', U(1, 5)),
    ("active pr", ALL_USERS),
    # other core strings: the JSON column
    ('title eq "tour guide"', U(1)),
    ('TITLE EQ "TOUR GUIDE"', U(1)),
    ('title eq "100% engineer"', U(3)),
    ('title co "%"', U(3)),
    ('title sw "100%"', U(3)),
    ('title sw "100"', U(3, 4)),
    ('title co "_"', U()),
    ('title co "\\\\"', U(5)),
    ("title pr", U(1, 2, 3, 4, 5, 6, 10)),  # not "" (u8), JSON null (u9) or missing (u7)
    ("not (title pr)", U(7, 8, 9)),
    ("title eq null", U(7, 8, 9)),
    ('title ne "manager"', ALL_USERS - U(2)),
    ('not (title eq "manager")', ALL_USERS - U(2)),
    ('title gt "t"', U(1, 6, 10)),
    ('title lt "b"', U(3, 4, 5, 8)),  # "" is not present (pr) but is a string that sorts first
    ('title eq ""', U(8)),
    ('userType eq "employee"', U(1, 10)),
    ('nickName eq "BABS"', U(1)),
    ('profileUrl sw "https://login.example.com/"', U(1)),
    ('name.middleName eq "jane"', U(1)),
    ('name.formatted co "iii"', U(1)),
    ('locale eq "EN-us"', U(1)),
    ("name pr", U(1, 2, 3)),
    # enterprise extension, nested in the JSON column under its URN
    (f'{ENT}:employeeNumber eq "701984"', U(1)),
    (f'{ENT.upper()}:EMPLOYEENUMBER eq "701984"', U(1)),
    ('employeeNumber eq "1001"', U(2)),  # unqualified: the one schema that has it
    (f'{ENT}:department co "SALES"', U(2)),
    (f'{ENT}:department sw "tour"', U(1)),
    (f'{ENT}:costCenter gt "4000"', U(1)),
    (f"{ENT}:organization pr", U(2)),
    (f'{ENT}:manager.value eq "u2"', U(1)),
    (f'{ENT}:manager.displayName co "smith"', U(1)),
    (f"{ENT}:manager pr", U(1)),
    (f'{ENT}:employeeNumber ne "701984"', ALL_USERS - U(1)),
    # emails: EXISTS over user_emails
    ('emails eq "BJENSEN@example.com"', U(1)),
    ('emails.value eq "john@example.com"', U(2)),
    ('emails co "@example.com"', U(1, 2)),
    ('emails.value ew ".TEST"', U(3, 4)),
    ('emails.value sw "alice_"', U(3)),
    ('emails.type eq "WORK"', U(1, 2, 3)),
    ("emails.primary eq true", U(1, 2)),
    ('emails.primary eq "True"', U(1, 2)),
    ("emails pr", U(1, 2, 3, 4)),
    ("emails.type pr", U(1, 2, 3)),
    ("not (emails pr)", U(5, 6, 7, 8, 9, 10)),
    ('emails.value ne "bjensen@example.com"', ALL_USERS - U(1)),
    ('emails[type eq "work" and value co "example"]', U(1, 2)),
    ('emails[type eq "home" and value co "example"]', U()),  # one element must satisfy both
    ('emails.type eq "home" and emails.value co "example"', U(1)),  # any elements
    ('emails[type eq "work" and not (primary eq true)]', U(3)),
    ('emails[type ne "work"]', U(1, 4)),
    ('EMAILS[TYPE EQ "work" or value sw "alicex"]', U(1, 2, 3, 4)),
    ("emails[primary eq true]", U(1, 2)),
    ("emails[type pr]", U(1, 2, 3)),
    # meta: created_at / updated_at / version
    ('meta.created lt "2020-03-01T00:00:00Z"', U(1, 2)),
    ('meta.created ge "2020-10-01T00:00:00Z"', U(10)),
    ('meta.created eq "2020-05-01T00:00:00Z"', U(5)),
    ('meta.created eq "2020-05-01T02:00:00+02:00"', U(5)),
    ('meta.created ne "2020-05-01T00:00:00Z"', ALL_USERS - U(5)),
    ('meta.lastModified gt "2024-09-15T12:00:00"', U(10)),
    ('META.LASTMODIFIED le "2024-01-15T12:00:00Z"', U(1)),
    ("meta.created pr", ALL_USERS),
    ('meta.version eq "W/\\"3\\""', U(3)),
    ("meta.version eq 3", U(3)),
    ('meta.version ne "3"', ALL_USERS - U(3)),
    # logic
    ('userName eq "bjensen" or userName eq "jsmith"', U(1, 2)),
    ('active eq true and emails.type eq "work"', U(1, 3)),
    ('not (userName eq "bjensen" or active eq false)', ALL_USERS - U(1, 2)),
    (
        'title pr and (userType eq "employee" or emails.primary eq true) and not (id eq "u10")',
        U(1, 2),
    ),
    ('userName eq "bjensen" and userName eq "jsmith"', U()),
]


@pytest.mark.parametrize(("text", "expected"), USER_CASES, ids=[c[0] for c in USER_CASES])
def test_user_filters_select_exactly(store, text, expected):
    assert user_ids(store, text) == expected


TEAM_CASES = [
    ('displayName eq "admins"', {"t1"}),
    ('DISPLAYNAME EQ "ADMINS"', {"t1"}),
    (f'{CORE_GROUP}:displayName eq "sales team"', {"t2"}),
    ('displayName eq "équipe_a"', {"t4"}),
    ('displayName sw "ÉQUIPE_"', {"t4"}),  # not ÉquipeXA
    ('displayName sw "équipe"', {"t4", "t5"}),
    ('displayName co "%"', {"t3"}),
    ('displayName gt "s"', {"t2", "t4", "t5"}),
    ('displayName ne "admins"', ALL_TEAMS - {"t1"}),
    ('externalId eq "G-1"', {"t1"}),
    ('externalId eq "g-1"', {"t2"}),
    ("externalId pr", {"t1", "t2"}),
    ('id eq "t3"', {"t3"}),
    ('members eq "u2"', {"t1", "t2"}),
    ('members.value eq "u1"', {"t1"}),
    ('members[value eq "u3"]', {"t4"}),
    ('members[value eq "u1" or value eq "u3"]', {"t1", "t4"}),
    ('members[value eq "U1"]', set() if MEMBER_VALUE_CASE_EXACT else {"t1"}),
    ("members pr", {"t1", "t2", "t4"}),
    ("not (members pr)", {"t3", "t5"}),
    ('members.value ne "u2"', {"t3", "t4", "t5"}),
    ('displayName eq "Admins" and members eq "u2"', {"t1"}),
    ('meta.created gt "2021-03-01T00:00:00Z"', {"t4", "t5"}),
    ('meta.created ge "2021-03-01T00:00:00Z"', {"t3", "t4", "t5"}),
    ('meta.lastModified lt "2025-02-01T00:00:00Z"', {"t1"}),
    ("meta.lastModified pr", ALL_TEAMS),
    ("meta.version eq 1", ALL_TEAMS),
    ('meta.version eq "W/\\"2\\""', set()),
]


@pytest.mark.parametrize(("text", "expected"), TEAM_CASES, ids=[c[0] for c in TEAM_CASES])
def test_team_filters_select_exactly(store, text, expected):
    assert team_ids(store, text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('phoneNumbers eq "x"', "'phoneNumbers' is not filterable"),
        ('phoneNumbers.value eq "x"', "'phoneNumbers.value' is not filterable"),
        ('addresses[type eq "work"]', "'addresses' is not filterable"),
        ("roles pr", "'roles' is not filterable"),
        ('groups.value eq "t1"', "'groups.value' is not filterable"),
        ('x509Certificates eq "x"', "not filterable"),
        ('foo eq "x"', "'foo' is not filterable"),
        ('password eq "secret"', "'password' is not filterable"),
        ('name.foo eq "x"', "'name.foo' is not filterable"),
        ('title.x eq "y"', "'title.x' is not filterable"),
        ('emails.display eq "x"', "'emails.display' is not filterable"),
        ('emails[display eq "x"]', "'emails.display' is not filterable"),
        ("emails[foo pr]", "'emails.foo' is not filterable"),
        ('meta.resourceType eq "User"', "'meta.resourceType' is not filterable"),
        ("meta pr", "'meta' is not filterable"),
        ('urn:foo:bar:userName eq "x"', "unknown schema 'urn:foo:bar'"),
        (f'{CORE_GROUP}:displayName eq "x"', "unknown schema"),
        (f'{ENT}:userName eq "x"', "not filterable"),
        ("active gt true", "boolean: only eq, ne and pr"),
        ('active co "t"', "boolean"),
        ('active eq "yes"', "not true or false"),
        ("active eq 1", "not true or false"),
        ("title eq 5", "compare it with a string"),
        ("userName eq true", "compare it with a string"),
        ("title gt null", "null takes only eq and ne"),
        ('meta.created gt "yesterday"', "not an ISO 8601 dateTime"),
        ("meta.created gt 5", "ISO 8601"),
        ('meta.created co "2020"', "strings only"),
        ('meta.version gt "1"', "eq or ne"),
        ('meta.version eq "abc"', "eq or ne"),
        ('name eq "x"', "'name' is complex"),
        (f'{ENT}:manager eq "x"', "'manager' is complex"),
        ('title[value eq "x"]', "not a multi-valued attribute"),
        ('name[givenName eq "x"]', "not a multi-valued attribute"),
        ('emails.value eq "a" or phoneNumbers pr', "'phoneNumbers' is not filterable"),
    ],
)
def test_unfilterable_user_attributes_are_refused_not_widened(text, message):
    with pytest.raises(InvalidFilter, match=message) as info:
        user_condition(parse_filter(text))
    assert info.value.scim_type == "invalidFilter"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('members.display eq "x"', "'members.display' is not filterable"),
        ('members[type eq "User"]', "'members.type' is not filterable"),
        ('title eq "x"', "'title' is not filterable"),
        ('userName eq "x"', "'userName' is not filterable"),
        ('displayName.x eq "y"', "not filterable"),
        ('meta.created eq "x"', "ISO 8601"),
        (f'{CORE}:displayName eq "x"', "unknown schema"),
        ('emails eq "x"', "'emails' is not filterable"),
    ],
)
def test_unfilterable_group_attributes_are_refused(text, message):
    with pytest.raises(InvalidFilter, match=message):
        team_condition(parse_filter(text))


@pytest.mark.parametrize("dialect", [postgresql.dialect(), sqlite.dialect()], ids=["postgresql", "sqlite"])
def test_username_eq_is_an_indexable_comparison_on_the_key_column(dialect):
    stmt = select(User.id).where(user_condition(parse_filter('userName eq "BJensen"')))
    compiled = stmt.compile(dialect=dialect)
    where = str(compiled).split("WHERE", 1)[1].strip()
    assert where in ("users.user_name_key = %(param_1)s", "users.user_name_key = ?")
    assert list(compiled.params.values()) == ["bjensen"]


@pytest.mark.parametrize("dialect", [postgresql.dialect(), sqlite.dialect()], ids=["postgresql", "sqlite"])
def test_group_display_name_eq_is_an_indexable_comparison_on_the_key_column(dialect):
    stmt = select(Team.id).where(team_condition(parse_filter('displayName eq "Admins"')))
    where = str(stmt.compile(dialect=dialect)).split("WHERE", 1)[1].strip()
    assert where in ("teams.display_name_key = %(param_1)s", "teams.display_name_key = ?")


def test_enterprise_attributes_read_the_json_column_by_urn_on_both_dialects():
    cond = user_condition(parse_filter(f'{ENT}:manager.value eq "x"'))
    pg = select(User.id).where(cond).compile(dialect=postgresql.dialect())
    assert "lower(CAST((users.data #>> %(data_1)s) AS VARCHAR)) = lower(%(param_1)s)" in str(pg)
    assert pg.params["data_1"] == (ENT, "manager", "value")
    lite = select(User.id).where(cond).compile(dialect=sqlite.dialect())
    assert "lower(JSON_EXTRACT(users.data, ?)) = lower(?)" in str(lite)
    assert lite.params["data_1"] == (ENT, "manager", "value")


def test_ne_is_the_complement_of_eq(store):
    for attr in ("title", "externalId", "emails.value", f"{ENT}:department", "name.givenName"):
        hit = user_ids(store, f'{attr} eq "x"')
        assert user_ids(store, f'{attr} ne "x"') == ALL_USERS - hit
        assert user_ids(store, f'not ({attr} eq "x")') == ALL_USERS - hit


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("a%b", "a\\%b"),
        ("a_b", "a\\_b"),
        ("a\\b", "a\\\\b"),
        ("100%_\\", "100\\%\\_\\\\"),
        ("plain", "plain"),
    ],
)
def test_escape_like(value, escaped):
    assert escape_like(value) == escaped


def test_the_deepest_and_longest_accepted_filters_run(store):
    # a value path holding a not() (2 levels) wrapped in not(), `or (...)`, `and (...)`
    deep, expected = 'emails[type eq "work" or not (value co "x")]', U(1, 2, 3)
    for i in range(MAX_DEPTH - 2):
        if i % 3 == 0:
            deep, expected = f"not ({deep})", ALL_USERS - expected
        elif i % 3 == 1:
            deep, expected = f'id eq "u9" or ({deep})', expected | U(9)
        else:
            deep, expected = f"active eq true and ({deep})", expected - U(2)
    assert user_ids(store, deep) == expected
    with pytest.raises(InvalidFilter, match="deeper than"):
        parse_filter(f"({deep})")
    long = " or ".join(f'userName eq "user{i}"' for i in range(400)) + ' or userName eq "JSMITH"'
    assert user_ids(store, long) == U(2)
