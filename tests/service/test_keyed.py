"""Key lookups (`userName eq`, `externalId eq`, Group `displayName eq`) answer exactly as the
general filter translation does, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from syncd.service import teams, users
from syncd.service.common import list_scoped
from syncd.service.filters import parse_filter, team_condition, user_condition
from syncd.service.keyed import key_filter
from syncd.service.schema import GROUP, USER
from syncd.store import session_scope
from syncd.store.models import Team, User
from tests.service.helpers import ENTRA, LOCAL, OKTA, make_user, setup_dirs

CORE_USER = USER.core.id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "Ada@X"', ("user_name_key", "ada@x")),
        ('USERNAME eq "Ada@X"', ("user_name_key", "ada@x")),
        (f'{CORE_USER}:userName eq "Ada@X"', ("user_name_key", "ada@x")),
        ('externalId eq "E-1"', ("external_id", "E-1")),
        ('userName ne "a"', None),
        ('userName co "a"', None),
        ("userName eq null", None),
        ("userName eq true", None),
        ('userName eq "a" and active eq true', None),
        ('not (userName eq "a")', None),
        ('displayName eq "a"', None),
        ('name.givenName eq "a"', None),
        ('emails eq "a"', None),
        ('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:userName eq "a"', None),
    ],
)
def test_key_filter_users(text: str, expected: tuple[str, str] | None) -> None:
    assert key_filter(parse_filter(text), USER, users.KEYS) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('displayName eq "Eng"', ("display_name_key", "eng")),
        ('externalId eq "G1"', ("external_id", "G1")),
        ('displayName sw "E"', None),
        ('members.value eq "x"', None),
    ],
)
def test_key_filter_groups(text: str, expected: tuple[str, str] | None) -> None:
    assert key_filter(parse_filter(text), GROUP, teams.KEYS) == expected


@pytest.fixture
def eng(engine):
    setup_dirs(engine)
    return engine


PAGES = [(1, None), (1, 0), (1, 1), (2, 10), (0, 5), (-3, 1)]


def test_user_key_pages_match_general_translation(eng) -> None:
    make_user(eng, "Ada@Example.com", externalId="E1")
    make_user(eng, "bob@example.com", externalId="E2")
    make_user(eng, "ada@example.com", actor=OKTA, externalId="E1")  # other directory
    make_user(eng, "ada@example.com", actor=LOCAL)
    filters = [
        'userName eq "ADA@example.com"',
        'externalId eq "E1"',
        'externalId eq "e1"',
        'userName eq "nobody"',
    ]
    for actor in (ENTRA, OKTA, LOCAL):
        for text in filters:
            for start, count in PAGES:
                with session_scope(eng, write=False) as s:
                    fast = users.list_users(s, actor=actor, filter=text, start_index=start, count=count)
                    cond = user_condition(parse_filter(text))
                    slow = list_scoped(s, User, actor, cond, start, count)
                    assert [u.id for u in fast.items] == [u.id for u in slow.items], (
                        actor,
                        text,
                        start,
                        count,
                    )
                    assert (fast.total, fast.start_index) == (slow.total, slow.start_index)
                    key = users.user_key(text)
                    assert key is not None
                    with eng.connect() as conn:  # the SCIM list's Core path: the same page, as rows
                        core = users.list_users_by_key(
                            conn, actor=actor, column=key[0], value=key[1], start_index=start, count=count
                        )
                    assert [(r.id, r.data, r.version) for r in core.items] == [
                        (u.id, u.data, u.version) for u in fast.items
                    ]
                    assert (core.total, core.start_index) == (fast.total, fast.start_index)


def test_group_key_pages_match_general_translation(eng) -> None:
    with session_scope(eng) as s:
        teams.create_team(s, actor=ENTRA, body={"displayName": "Eng", "externalId": "G1"})
        teams.create_team(s, actor=OKTA, body={"displayName": "eng"})
    for actor in (ENTRA, OKTA):
        for text in ('displayName eq "ENG"', 'externalId eq "G1"', 'displayName eq "ops"'):
            for start, count in PAGES:
                with session_scope(eng, write=False) as s:
                    fast = teams.list_teams(s, actor=actor, filter=text, start_index=start, count=count)
                    slow = list_scoped(s, Team, actor, team_condition(parse_filter(text)), start, count)
                    assert [t.id for t in fast.items] == [t.id for t in slow.items]
                    assert (fast.total, fast.start_index) == (slow.total, slow.start_index)
