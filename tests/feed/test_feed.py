"""The change feed on both stores: what each service operation writes, atomicity, paging,
directory filters, retention (prune, FeedGone, head)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from syncd import feed
from syncd.service import bulk, teams, users
from syncd.service.context import Actor
from syncd.service.tokens import ensure_directory
from syncd.store import session_scope
from syncd.store.models import utcnow
from tests.feed.helpers import read_all, settled_head

A = Actor("scim", "dir-a", "t1")
B = Actor("pull", "dir-b", "entra")


def setup_dirs(engine: Engine) -> None:
    with session_scope(engine) as s:
        ensure_directory(s, name="dir-a", kind="scim")
        ensure_directory(s, name="dir-b", kind="graph")


def kinds(engine: Engine, after: str | None = None) -> list[tuple[str, str | None]]:
    return [(c.kind, c.name) for c in read_all(engine, after).changes]


def test_service_operations_write_their_changes_in_order(engine: Engine) -> None:
    setup_dirs(engine)
    with session_scope(engine) as s:
        u = users.create_user(s, actor=A, body={"userName": "ann@x", "externalId": "e1"})
        v = users.create_user(s, actor=A, body={"userName": "bob@x"})
        t = teams.create_team(s, actor=A, body={"displayName": "eng", "members": [{"value": u.id}]})
    with session_scope(engine) as s:
        users.patch_user(
            s,
            actor=A,
            user_id=u.id,
            operations=[
                {"op": "replace", "path": "displayName", "value": "Ann"},
                {"op": "replace", "path": "active", "value": False},
            ],
        )
        users.set_active(s, actor=A, user_id=u.id, active=True)
        teams.patch_team(
            s,
            actor=A,
            team_id=t.id,
            operations=[
                {"op": "replace", "path": "displayName", "value": "engineering"},
                {"op": "add", "path": "members", "value": [{"value": v.id}]},
                {"op": "remove", "path": f'members[value eq "{u.id}"]'},
            ],
        )
        teams.set_archived(s, actor=A, team_id=t.id, archived=True)
        teams.set_archived(s, actor=A, team_id=t.id, archived=False)
        users.delete_user(s, actor=A, user_id=v.id)
        teams.delete_team(s, actor=A, team_id=t.id)
    assert kinds(engine) == [
        ("user.created", "ann@x"),
        ("user.created", "bob@x"),
        ("team.created", "eng"),
        ("team.members_added", "eng"),
        ("user.updated", "ann@x"),
        ("user.deactivated", "ann@x"),
        ("user.reactivated", "ann@x"),
        ("team.renamed", "engineering"),
        ("team.members_added", "engineering"),
        ("team.members_removed", "engineering"),
        ("team.archived", "engineering"),
        ("team.unarchived", "engineering"),
        ("user.deleted", "bob@x"),
        ("team.deleted", "engineering"),
    ]
    page = read_all(engine)
    added = page.changes[3]
    assert added.directory == "dir-a" and added.resource_id == t.id
    assert added.data["members"] == [{"id": u.id, "userName": "ann@x"}]
    # userNames are as of reading: bob@x was deleted since, his id remains
    assert page.changes[8].data["members"] == [{"id": v.id, "userName": None}]
    assert page.changes[12].data["team_ids"] == [t.id]
    assert page.changes[4].data["changed"] == ["displayName"]
    assert all(c.actor == "scim:t1" for c in page.changes)


def test_a_write_that_changes_nothing_writes_no_change(engine: Engine) -> None:
    setup_dirs(engine)
    with session_scope(engine) as s:
        u = users.create_user(s, actor=A, body={"userName": "ann@x"})
    head = settled_head(engine)
    with session_scope(engine) as s:
        users.replace_user(s, actor=A, user_id=u.id, body={"userName": "ann@x"})
        users.set_active(s, actor=A, user_id=u.id, active=True)
    assert feed.read(engine, after=head, limit=10).changes == []


def test_a_rolled_back_transaction_leaves_no_change(engine: Engine) -> None:
    setup_dirs(engine)
    with pytest.raises(RuntimeError), session_scope(engine) as s:
        users.create_user(s, actor=A, body={"userName": "ann@x"})
        raise RuntimeError("crash before commit")
    assert kinds(engine) == []
    with session_scope(engine) as s:
        users.create_user(s, actor=A, body={"userName": "ann@x"})
    assert kinds(engine) == [("user.created", "ann@x")]


def test_bulk_member_changes_are_one_change_per_team_per_batch(engine: Engine) -> None:
    setup_dirs(engine)
    with session_scope(engine) as s:
        uids = bulk.create_users(s, actor=B, bodies=[{"userName": f"u{i}@x"} for i in range(50)])
        tids = bulk.create_teams(s, actor=B, bodies=[{"displayName": "t1"}, {"displayName": "t2"}])
    start = settled_head(engine)
    with session_scope(engine) as s:
        bulk.add_memberships(s, actor=B, pairs=[(t, u) for t in tids for u in uids])
    with session_scope(engine) as s:
        bulk.remove_memberships(s, actor=B, pairs=[(tids[0], uids[0]), (tids[0], uids[1])])
        bulk.set_active(s, actor=B, user_ids=uids[:2], active=False)
    page = read_all(engine, start)
    assert [(c.kind, c.name, len(c.data.get("members", []))) for c in page.changes] == [
        ("team.members_added", "t1", 50),
        ("team.members_added", "t2", 50),
        ("team.members_removed", "t1", 2),
        ("user.deactivated", "u0@x", 0),
        ("user.deactivated", "u1@x", 0),
    ]
    assert page.changes[0].data["members"][7] == {"id": uids[7], "userName": "u7@x"}
    assert {c.directory for c in page.changes} == {"dir-b"}
    assert kinds(engine)[:2] == [("user.created", "u0@x"), ("user.created", "u1@x")]


def test_paging_resumes_after_next_and_a_directory_filter_moves_past_other_directories(
    engine: Engine,
) -> None:
    setup_dirs(engine)
    for i in range(5):
        with session_scope(engine) as s:
            users.create_user(s, actor=A, body={"userName": f"a{i}@x"})
            users.create_user(s, actor=B, body={"userName": f"b{i}@x"})
    settled_head(engine)
    seen: list[str | None] = []
    pos: str | None = None
    while True:
        page = feed.read(engine, after=pos, limit=3)
        if not page.changes:
            break
        seen += [c.name for c in page.changes]
        pos = page.next
    assert seen == [n for i in range(5) for n in (f"a{i}@x", f"b{i}@x")]
    assert feed.read(engine, after=pos, limit=3).next == pos
    only_b = feed.read(engine, after=None, limit=100, directories={"dir-b"})
    assert [c.name for c in only_b.changes] == [f"b{i}@x" for i in range(5)]
    assert only_b.next == settled_head(engine)
    assert feed.read(engine, after=None, limit=100, directories={"nope"}).next == settled_head(engine)
    assert feed.lag(engine, after=None, directories={"dir-a"}).changes == 5


def test_prune_moves_the_horizon_and_an_older_position_is_gone(engine: Engine) -> None:
    setup_dirs(engine)
    with session_scope(engine) as s:
        users.create_user(s, actor=A, body={"userName": "old@x"})
    early = read_all(engine)
    with session_scope(engine) as s:
        users.create_user(s, actor=A, body={"userName": "mid@x"})
    middle = settled_head(engine)
    with session_scope(engine) as s:
        assert feed.prune(s, older_than=utcnow() + timedelta(seconds=1)) == 2
    assert feed.oldest_retained(engine) == middle
    with session_scope(engine) as s:
        users.create_user(s, actor=A, body={"userName": "new@x"})
    with pytest.raises(feed.FeedGone) as gone:
        read_all(engine, early.next)
    assert "resync" in str(gone.value) and gone.value.oldest == middle
    assert kinds(engine, middle) == [("user.created", "new@x")]
    assert kinds(engine) == [("user.created", "new@x")]
    with session_scope(engine) as s:
        assert feed.prune(s, older_than=utcnow() - timedelta(days=1)) == 0
    assert feed.Position.parse(settled_head(engine)) > feed.Position.parse(middle)


@pytest.mark.parametrize("bad", ["x", "1", "1.2.3", "-1.2", "1.a"])
def test_a_position_the_feed_never_issued_is_refused(engine: Engine, bad: str) -> None:
    with pytest.raises(feed.BadPosition):
        feed.read(engine, after=bad, limit=1)


def test_the_daemons_prune_deletes_only_changes_older_than_retention(engine: Engine) -> None:
    from sqlalchemy import update

    from syncd.config.delivery import FeedSettings
    from syncd.feed.retention import prune_once
    from syncd.store.models import Change

    setup_dirs(engine)
    with session_scope(engine) as s:
        users.create_user(s, actor=A, body={"userName": "old@x"})
    settled_head(engine)
    with session_scope(engine) as s:
        s.execute(update(Change).values(at=utcnow() - timedelta(days=31)))
    with session_scope(engine) as s:
        users.create_user(s, actor=A, body={"userName": "new@x"})
    settled_head(engine)
    assert prune_once(engine, FeedSettings(retention=30 * 86400)) == 1
    assert kinds(engine) == [("user.created", "new@x")]
    assert prune_once(engine, FeedSettings(retention=30 * 86400)) == 0
