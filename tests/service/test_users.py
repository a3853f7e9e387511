"""Service-layer contract for users, run on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from syncd.service import users
from syncd.service.common import etag
from syncd.service.errors import Conflict, InvalidFilter, InvalidValue, NotFound, PreconditionFailed, TooMany
from syncd.store import session_scope
from syncd.store.models import UserEmail
from tests.service.helpers import ENTRA, LOCAL, OKTA, audit_count, make_user, setup_dirs, user_body


@pytest.fixture
def eng(engine):
    setup_dirs(engine)
    return engine


def test_create_get_roundtrip_keeps_attributes(eng) -> None:
    body = user_body(
        "Ada@Example.com",
        name={"givenName": "Ada", "familyName": "Lovelace"},
        externalId="ext-1",
        password="never-stored",
        roles=[],
        meta={"resourceType": "User"},
    )
    with session_scope(eng) as s:
        u = users.create_user(s, actor=ENTRA, body=body)
    with session_scope(eng, write=False) as s:
        got = users.get_user(s, actor=ENTRA, user_id=u.id)
    assert got.user_name == "Ada@Example.com"
    assert got.user_name_key == "ada@example.com"
    assert got.external_id == "ext-1"
    assert got.directory == "entra"
    assert "password" not in got.data and "roles" not in got.data and "meta" not in got.data
    assert got.data["name"] == {"givenName": "Ada", "familyName": "Lovelace"}
    assert got.version == 1


def test_username_unique_case_insensitively_within_directory(eng) -> None:
    make_user(eng, "ada@example.com")
    with pytest.raises(Conflict), session_scope(eng) as s:
        users.create_user(s, actor=ENTRA, body=user_body("ADA@example.COM"))
    make_user(eng, "ada@example.com", actor=OKTA)  # another directory: allowed
    make_user(eng, "ada@example.com", actor=LOCAL)  # local scope: allowed


def test_external_id_unique_within_directory(eng) -> None:
    make_user(eng, "a@x", externalId="E1")
    with pytest.raises(Conflict), session_scope(eng) as s:
        users.create_user(s, actor=ENTRA, body=user_body("b@x", externalId="E1"))
    make_user(eng, "b@x", externalId="e1")  # externalId is caseExact


def test_patch_rename_to_taken_username_is_conflict_not_crash(eng) -> None:
    make_user(eng, "a@x")
    uid = make_user(eng, "b@x")
    with pytest.raises(Conflict), session_scope(eng) as s:
        users.patch_user(
            s, actor=ENTRA, user_id=uid, operations=[{"op": "replace", "path": "userName", "value": "A@X"}]
        )


def test_version_changes_only_on_real_change(eng) -> None:
    uid = make_user(eng, "a@x", displayName="A")
    same = [{"op": "replace", "path": "displayName", "value": "A"}]
    with session_scope(eng) as s:
        assert users.patch_user(s, actor=ENTRA, user_id=uid, operations=same).version == 1
    with session_scope(eng) as s:
        assert (
            users.replace_user(s, actor=ENTRA, user_id=uid, body=user_body("a@x", displayName="A")).version
            == 1
        )
    with session_scope(eng) as s:
        u = users.patch_user(
            s, actor=ENTRA, user_id=uid, operations=[{"op": "replace", "path": "displayName", "value": "B"}]
        )
        assert u.version == 2
    assert audit_count(eng, resource_id=uid) == 2  # create + one real change


def test_if_match(eng) -> None:
    uid = make_user(eng, "a@x")
    ops = [{"op": "replace", "path": "title", "value": "Eng"}]
    with pytest.raises(PreconditionFailed), session_scope(eng) as s:
        users.patch_user(s, actor=ENTRA, user_id=uid, operations=ops, if_match='W/"7"')
    with session_scope(eng) as s:
        u = users.patch_user(s, actor=ENTRA, user_id=uid, operations=ops, if_match=etag(1))
    assert u.version == 2
    with session_scope(eng) as s:
        users.patch_user(
            s, actor=ENTRA, user_id=uid, operations=[{"op": "remove", "path": "title"}], if_match="*"
        )


def test_put_replaces_everything_and_carries_id_and_meta(eng) -> None:
    uid = make_user(eng, "a@x", title="Eng", nickName="ace")
    body = user_body("a@x", id=uid, meta={"version": 'W/"1"'}, displayName="Ada")
    with session_scope(eng) as s:
        u = users.replace_user(s, actor=ENTRA, user_id=uid, body=body)
    assert u.data.get("title") is None and u.data.get("nickName") is None and u.data["displayName"] == "Ada"


def test_deactivate_is_soft_and_reactivate_keeps_id(eng) -> None:
    uid = make_user(eng, "a@x")
    with session_scope(eng) as s:
        users.patch_user(
            s, actor=ENTRA, user_id=uid, operations=[{"op": "Replace", "path": "active", "value": "False"}]
        )
    with session_scope(eng, write=False) as s:
        assert users.get_user(s, actor=ENTRA, user_id=uid).active is False
        page = users.list_users(s, actor=ENTRA, filter='userName eq "a@x"')
        assert [u.id for u in page.items] == [uid]  # soft-deleted users still listed
    with session_scope(eng) as s:
        assert users.set_active(s, actor=ENTRA, user_id=uid, active=True).active is True


def test_delete_then_get_is_not_found(eng) -> None:
    uid = make_user(eng, "a@x")
    with session_scope(eng) as s:
        users.delete_user(s, actor=ENTRA, user_id=uid)
    with pytest.raises(NotFound), session_scope(eng) as s:
        users.get_user(s, actor=ENTRA, user_id=uid)
    with pytest.raises(NotFound), session_scope(eng) as s:
        users.delete_user(s, actor=ENTRA, user_id=uid)


def test_directory_isolation(eng) -> None:
    uid = make_user(eng, "a@x")
    for actor in (OKTA, LOCAL):
        with pytest.raises(NotFound), session_scope(eng) as s:
            users.get_user(s, actor=actor, user_id=uid)
        with pytest.raises(NotFound), session_scope(eng) as s:
            users.patch_user(
                s, actor=actor, user_id=uid, operations=[{"op": "replace", "path": "title", "value": "x"}]
            )
        with pytest.raises(NotFound), session_scope(eng) as s:
            users.delete_user(s, actor=actor, user_id=uid)
        with session_scope(eng, write=False) as s:
            assert users.list_users(s, actor=actor).total == 0


def test_emails_rows_follow_the_attribute(eng) -> None:
    uid = make_user(eng, "a@x")
    with session_scope(eng) as s:
        users.patch_user(
            s,
            actor=ENTRA,
            user_id=uid,
            operations=[{"op": "add", "path": "emails", "value": [{"value": "B@Y", "type": "home"}]}],
        )
    with session_scope(eng, write=False) as s:
        rows = s.execute(select(UserEmail).where(UserEmail.user_id == uid)).scalars().all()
        assert sorted(r.value_key for r in rows) == ["a@x", "b@y"]
        page = users.list_users(s, actor=ENTRA, filter='emails.value eq "b@y"')
        assert [u.id for u in page.items] == [uid]


def test_list_pagination_is_stable_and_counts(eng) -> None:
    ids = [make_user(eng, f"u{i:02d}@x") for i in range(7)]
    seen = []
    with session_scope(eng, write=False) as s:
        for start in (1, 4, 7):
            page = users.list_users(s, actor=ENTRA, start_index=start, count=3)
            assert page.total == 7 and page.start_index == start
            seen += [u.id for u in page.items]
        assert users.list_users(s, actor=ENTRA, count=0).items == []
        with pytest.raises(TooMany):
            users.list_users(s, actor=ENTRA, count=100_000)
    assert seen == ids


def test_filter_is_case_insensitive_and_errors_are_typed(eng) -> None:
    uid = make_user(eng, "Ada@Example.com")
    with session_scope(eng, write=False) as s:
        assert [
            u.id for u in users.list_users(s, actor=ENTRA, filter='USERNAME EQ "ada@example.COM"').items
        ] == [uid]
        assert users.list_users(s, actor=ENTRA, filter='userName eq "4d3c-random-guid"').total == 0
        for bad in ("userName eq", 'shoeSize eq "9"', 'phoneNumbers.value eq "1"', "(((", 'userName zz "x"'):
            with pytest.raises(InvalidFilter):
                users.list_users(s, actor=ENTRA, filter=bad)


@pytest.mark.parametrize(
    "body",
    [
        {"userName": ""},
        {"displayName": "no user name"},
        {"userName": "a", "active": "perhaps"},
        {"userName": "a", "emails": "a@x"},
        {"userName": {"a": 1}},
        {"userName": "a", "emails": [{"value": "a", "primary": True}, {"value": "b", "primary": True}]},
    ],
)
def test_invalid_bodies_are_invalid_value(eng, body) -> None:
    with pytest.raises(InvalidValue), session_scope(eng) as s:
        users.create_user(s, actor=ENTRA, body=body)


def test_onelogin_emails_as_object(eng) -> None:
    with session_scope(eng) as s:
        u = users.create_user(
            s, actor=ENTRA, body={"userName": "o@x", "emails": {"value": "o@x", "type": "work"}}
        )
    assert u.data["emails"] == [{"value": "o@x", "type": "work"}]


def test_audit_event_per_change_with_before_and_after(eng) -> None:
    uid = make_user(eng, "a@x", displayName="A")
    with session_scope(eng) as s:
        users.patch_user(
            s, actor=ENTRA, user_id=uid, operations=[{"op": "replace", "path": "displayName", "value": "B"}]
        )
    from sqlalchemy import select

    from syncd.store.models import AuditEvent

    with session_scope(eng, write=False) as s:
        evs = (
            s.execute(select(AuditEvent).where(AuditEvent.resource_id == uid).order_by(AuditEvent.id))
            .scalars()
            .all()
        )
    assert [e.action for e in evs] == ["user.create", "user.patch"]
    assert evs[1].before["displayName"] == "A" and evs[1].after["displayName"] == "B"
    assert evs[1].actor == "scim:token:t1" and evs[1].directory == "entra"


def test_failed_write_leaves_no_audit_and_no_change(eng) -> None:
    uid = make_user(eng, "a@x")
    make_user(eng, "b@x")
    with pytest.raises(Conflict), session_scope(eng) as s:
        users.patch_user(
            s,
            actor=ENTRA,
            user_id=uid,
            operations=[
                {"op": "replace", "path": "displayName", "value": "changed"},
                {"op": "replace", "path": "userName", "value": "b@x"},
            ],
        )
    with session_scope(eng, write=False) as s:
        u = users.get_user(s, actor=ENTRA, user_id=uid)
    assert u.version == 1 and "displayName" not in u.data
    assert audit_count(eng, resource_id=uid) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (user_body("ADA@x", externalId="new"), "userName 'ADA@x' is already taken"),
        (user_body("zed@x", externalId="E1"), "externalId 'E1' is already taken"),
        (user_body("ada@x", externalId="E1"), "userName 'ada@x' is already taken"),
    ],
)
def test_create_conflict_names_the_taken_attribute_and_keeps_the_transaction(eng, body, message) -> None:
    """The unique indexes refuse the row (no savepoint): the transaction stays usable and
    nothing of the refused user (row, emails, audit, change) is written."""
    make_user(eng, "ada@x", externalId="E1")
    before = audit_count(eng)
    with session_scope(eng) as s:
        with pytest.raises(Conflict) as err:
            users.create_user(s, actor=ENTRA, body=body)
        assert err.value.detail == message
        users.create_user(s, actor=ENTRA, body=user_body("other@x"))  # same transaction, still usable
    with session_scope(eng, write=False) as s:
        names = sorted(u.user_name for u in users.list_users(s, actor=ENTRA).items)
        emails = sorted(s.execute(select(UserEmail.value)).scalars())
    assert names == ["ada@x", "other@x"]
    assert emails == ["ada@x", "other@x"]
    assert audit_count(eng) == before + 1
