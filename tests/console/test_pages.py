"""The console's pages against a real daemon state and store (SQLite and PostgreSQL): what each
shows, its searches and pages, Sync now, Approve and apply, the user sync, SCIM tokens, and
hostile names arriving escaped."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from sqlalchemy import func, select

from syncd.console import paging
from syncd.console.pages import runs as runs_page
from syncd.service import teams as team_ops
from syncd.service import tokens
from syncd.service import users as user_ops
from syncd.service.context import Actor
from syncd.store import session_scope
from syncd.store.locks import directory_lock
from syncd.store.models import AuditEvent, ScimToken, SyncRun, Team, User
from tests.console.pages_env import ADMIN, PUBLIC_URL, Console, console_fixture  # noqa: F401 (fixture)

ACTOR = ADMIN.actor


def ids_of(html: str, prefix: str) -> list[str]:
    return re.findall(rf'data-testid="({re.escape(prefix)}[^"]*)"', html)


def plan_lines(html: str) -> list[str]:
    """The text of each plan-change line, tags dropped, entities decoded."""
    items = re.findall(r'<li[^>]*data-testid="plan-change"[^>]*>(.*?)</li>', html, re.S)
    return [" ".join(unescape(re.sub(r"<[^>]+>", " ", i)).split()) for i in items]


def stopped_run(c: Console, n: int = 5) -> tuple[int, list[str]]:
    """A first pull, then `n` users deleted in the IdP: the next pull stops (max_removals 3)."""
    c.sync()
    victims = sorted(c.fake.tenant.users.values(), key=lambda u: u.user_name)[:n]
    for u in victims:
        c.fake.tenant.delete_user(u.id)
    run_id = c.sync()
    with session_scope(c.engine, write=False) as s:
        assert s.get(SyncRun, run_id).outcome == "stopped"  # type: ignore[union-attr]
    return run_id, [u.user_name for u in victims]


def console_events(c: Console, action: str) -> list[AuditEvent]:
    with session_scope(c.engine, write=False) as s:
        return list(s.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars())


# -- overview and Sync now -----------------------------------------------------------------


def test_overview_has_a_row_per_directory_and_target_and_sync_now_for_pulls_only(console: Console) -> None:
    html = console.client.get("/").text
    assert ids_of(html, "dir-row-") == ["dir-row-entra", "dir-row-push"]
    assert ids_of(html, "sync-now-") == ["sync-now-entra"]
    assert "target-row-gateway" in html and "not connected yet" in html
    assert "never run" in html and "1h" in html
    push_row = re.search(r'data-testid="dir-row-push">(.*?)</tr>', html, re.S)
    assert push_row and "last push</span> —" in push_row.group(1)
    with session_scope(console.engine) as s:
        tokens.ensure_directory(s, name="push", kind="scim")
        user_ops.create_user(s, actor=Actor("scim", "push", "t"), body={"userName": "pushed@x"})
        at = s.execute(select(func.max(AuditEvent.at)).where(AuditEvent.directory == "push")).scalar_one()
    pushed = re.search(r'data-testid="dir-row-push">(.*?)</tr>', console.client.get("/").text, re.S)
    assert pushed and at.strftime("%Y-%m-%d %H:%M") in pushed.group(1)


def test_sync_now_redirects_to_the_run_which_the_overview_then_shows(console: Console) -> None:
    run_id = console.sync()
    page = console.client.get(f"/runs/{run_id}").text
    assert 'data-run-status="applied"' in page and re.search(r"\d+ users created", page)
    row = re.search(r'data-testid="dir-row-entra">(.*?)</tr>', console.client.get("/").text, re.S)
    assert row and f"run {run_id}" in row.group(1) and "applied" in row.group(1)
    [ev] = console_events(console, "directory.sync")
    assert ev.actor == ACTOR and ev.resource_id == "entra" and ev.after["run_id"] == run_id  # type: ignore[index]


def test_sync_now_while_a_sync_runs_answers_409_with_a_message(console: Console) -> None:
    handle = console.state.runner._claim("entra", "api", dry_run=False)  # a run in progress
    handle.run_id = 7
    try:
        r = console.client.post("/directories/entra/sync", data={"csrf": "t"})
    finally:
        console.state.runner._active.pop("entra")
    assert r.status_code == 409 and "already running" in r.text and 'href="/runs/7"' in r.text


@pytest.mark.parametrize(
    ("name", "status", "words"), [("push", 400, "push directory"), ("nope", 404, "no directory")]
)
def test_sync_now_of_a_push_or_unknown_directory_is_refused_in_words(
    console: Console, name: str, status: int, words: str
) -> None:
    r = console.client.post(f"/directories/{name}/sync", data={"csrf": "t"})
    assert r.status_code == status and words in r.text.lower()
    with session_scope(console.engine, write=False) as s:
        assert s.execute(select(func.count()).select_from(SyncRun)).scalar_one() == 0


def test_run_events_stream_the_status_until_the_run_ends(console: Console) -> None:
    run_id = console.sync()
    r = console.client.get(f"/runs/{run_id}/events")
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(d) for d in re.findall(r"^data: (.*)$", r.text, re.M)]
    assert events[-1]["done"] is True and events[-1]["outcome"] == "applied"


# -- runs ------------------------------------------------------------------------------------


def test_runs_filter_and_page(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    first = console.sync()
    planned = console.sync(dry_run="1")
    monkeypatch.setattr(paging, "PAGE_SIZE", 1)
    page1 = console.client.get("/runs").text
    assert ids_of(page1, "run-row-") == [f"run-row-{planned}"]
    nxt = re.search(r'href="([^"]+)"[^>]*data-testid="pager-next"', page1)
    assert nxt
    page2 = console.client.get(unescape(nxt.group(1))).text
    assert ids_of(page2, "run-row-") == [f"run-row-{first}"] and "pager-next" not in page2
    monkeypatch.setattr(paging, "PAGE_SIZE", 50)
    assert ids_of(console.client.get("/runs?outcome=planned").text, "run-row-") == [f"run-row-{planned}"]
    assert ids_of(console.client.get("/runs?trigger=api&directory=entra").text, "run-row-") == [
        f"run-row-{planned}",
        f"run-row-{first}",
    ]
    assert "runs-empty" in console.client.get("/runs?directory=push").text
    assert console.client.get("/runs?directory=%00").status_code == 200


def test_a_stopped_run_lists_every_change_by_name_paged(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id, victims = stopped_run(console)
    html = console.client.get(f"/runs/{run_id}").text
    lines = plan_lines(html)
    for name in victims:
        assert f"! deactivate {name}" in " | ".join(lines)
    assert any(re.match(r'- member \S+@\S+ from "team-\d+"', ln) for ln in lines)
    assert "5 users to deactivate" in html and 'data-testid="approve-button"' in html
    monkeypatch.setattr(runs_page, "PLAN_PAGE", 2)
    first = console.client.get(f"/runs/{run_id}").text
    assert len(plan_lines(first)) == 2 and 'data-testid="pager-next"' in first
    second = console.client.get(f"/runs/{run_id}?page=2").text
    assert plan_lines(second) == lines[2:4]


def test_approve_applies_the_kept_plan_audited_as_the_admin(console: Console) -> None:
    run_id, victims = stopped_run(console)
    r = console.client.post(f"/runs/{run_id}/approve", data={"csrf": "t"})
    assert r.status_code == 303
    new_id = int(r.headers["location"].rsplit("/", 1)[1])
    assert new_id != run_id
    with session_scope(console.engine, write=False) as s:
        assert s.get(SyncRun, new_id).trigger == "approve"  # type: ignore[union-attr]
        active = dict(
            s.execute(select(User.user_name, User.active).where(User.user_name.in_(victims))).tuples().all()
        )
        actors = set(s.execute(select(AuditEvent.actor).where(AuditEvent.sync_run_id == new_id)).scalars())
    assert active == dict.fromkeys(victims, False)
    assert actors == {f"pull:{ACTOR}"}
    [ev] = console_events(console, "sync_run.approve")
    assert ev.actor == ACTOR and ev.after["approval_run"] == new_id  # type: ignore[index]
    kept = console.client.get(f"/runs/{run_id}").text
    assert "approve-button" not in kept and f'href="/runs/{new_id}" data-testid="approved-by"' in kept
    applied = console.client.get(f"/runs/{new_id}").text
    assert f'href="/audit?run={new_id}" data-testid="run-audit"' in applied
    written = console.client.get(f"/audit?run={new_id}").text
    assert all(v in written for v in victims)  # names, not only ids, of what the run wrote
    assert "is not a run number" in console.client.get("/audit?run=x").text


def test_approve_after_the_directory_changed_explains_and_offers_a_fresh_plan(console: Console) -> None:
    run_id, victims = stopped_run(console)
    with session_scope(console.engine) as s:
        uid = s.execute(select(User.id).where(User.user_name == victims[0])).scalar_one()
        user_ops.patch_user(
            s,
            actor=Actor("scim", "entra", "t"),
            user_id=uid,
            operations=[{"op": "replace", "path": "displayName", "value": "Changed"}],
        )
    r = console.client.post(f"/runs/{run_id}/approve", data={"csrf": "t"})
    assert r.status_code == 409
    assert "approve-refused" in r.text and "changed since" in r.text and "1 change(s) were written" in r.text
    assert 'data-testid="plan-again"' in r.text and 'name="dry_run" value="1"' in r.text
    with session_scope(console.engine, write=False) as s:
        assert s.execute(select(SyncRun).where(SyncRun.trigger == "approve")).first() is None
    assert console_events(console, "sync_run.approve_refused")[0].actor == ACTOR
    fresh = console.sync(dry_run="1")  # the Plan again button's request
    with session_scope(console.engine, write=False) as s:
        run = s.get(SyncRun, fresh)
        assert run.dry_run and run.plan and run.outcome in ("planned", "stopped")  # type: ignore[union-attr]


def test_approve_while_a_sync_holds_the_directory_says_so_and_can_be_given_again(console: Console) -> None:
    run_id, _ = stopped_run(console)
    with directory_lock(console.engine, "entra"):
        busy = console.client.post(f"/runs/{run_id}/approve", data={"csrf": "t"})
    assert busy.status_code == 409 and "another sync of this directory is running" in busy.text
    assert "plan-again" not in busy.text and 'data-testid="approve-button"' in busy.text
    assert console.client.post(f"/runs/{run_id}/approve", data={"csrf": "t"}).status_code == 303


def test_a_run_that_is_not_stopped_has_no_approve_and_approving_it_is_refused(console: Console) -> None:
    run_id = console.sync()
    shown = console.client.get(f"/runs/{run_id}").text
    assert "approve-button" not in shown and "No changes" not in shown  # an applied run keeps no plan
    assert f'href="/audit?run={run_id}" data-testid="run-audit"' in shown
    r = console.client.post(f"/runs/{run_id}/approve", data={"csrf": "t"})
    assert r.status_code == 409 and "not stopped by a safety threshold" in r.text
    assert console.client.get("/runs/999999").status_code == 404
    assert console.client.get("/runs/not-a-run").status_code == 404
    assert console.client.get("/runs/1e9/events").status_code == 404
    assert console.client.post("/runs/999999/approve", data={"csrf": "t"}).status_code == 404


# -- teams, users, audit -----------------------------------------------------------------------


def test_teams_search_page_members_with_sources_and_audit_trail(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    console.sync()
    with session_scope(console.engine) as s:
        team = (
            s.execute(select(Team).where(Team.directory == "entra").order_by(Team.display_name_key))
            .scalars()
            .first()
        )
        local = user_ops.create_user(
            s, actor=Actor("manual", "entra", "t"), body={"userName": "zz-hand@x.example"}
        )
        team_ops.change_members(s, actor=Actor("manual", "entra", "t"), team_id=team.id, add=[local.id])  # type: ignore[union-attr]
        tid, tname, n = team.id, team.display_name, team.member_count  # type: ignore[union-attr]
    found = console.client.get(f"/teams?q={tname.upper()}").text
    assert f"team-row-{tid}" in found
    assert "teams-empty" in console.client.get("/teams?q=no-such-team").text
    html = console.client.get(f"/teams/{tid}").text
    sources = re.findall(r'data-testid="member-source">(\w+)<', html)
    assert len(sources) == n and set(sources) == {"pull", "manual"}
    assert "zz-hand@x.example" in html and "team.create" in html and "pull:entra" in html
    monkeypatch.setattr(paging, "PAGE_SIZE", 2)
    assert len(ids_of(console.client.get("/teams").text, "team-row-")) == 2
    paged = console.client.get(f"/teams/{tid}?page=2").text
    assert len(ids_of(paged, "member-row-")) == 2 and 'data-testid="pager-prev"' in paged
    assert console.client.get("/teams/nope").status_code == 404


def test_users_search_by_username_and_email_and_show_their_teams(console: Console) -> None:
    console.sync()
    u = next(u for u in console.fake.tenant.users.values() if console.fake.tenant.transitive_group_ids(u.id))
    with session_scope(console.engine) as s:
        row = s.execute(select(User).where(User.user_name == u.user_name)).scalar_one()
        uid = row.id
        user_ops.create_user(
            s,
            actor=Actor("manual", None, "t"),
            body={"userName": "mailonly", "emails": [{"value": "Unique.Mail@corp.example", "type": "work"}]},
        )
    assert f"user-row-{uid}" in console.client.get(f"/users?q={u.user_name[:-3].upper()}").text
    by_mail = console.client.get("/users?q=unique.mail@corp").text
    assert ids_of(by_mail, "user-row-") and "mailonly" in by_mail
    html = console.client.get(f"/users/{uid}").text
    assert ids_of(html, "user-team-") and 'data-testid="user-sync-button"' in html


def test_sync_this_user_now_shows_the_login_syncs_answer(console: Console) -> None:
    console.sync()
    tenant = console.fake.tenant
    u, gid = next(
        (u, g.id) for g in tenant.groups.values() for u in tenant.users.values() if u.id in g.user_ids
    )
    group_name = tenant.groups[gid].name
    tenant.remove_member(gid, u.id)
    with session_scope(console.engine, write=False) as s:
        uid = s.execute(select(User.id).where(User.user_name == u.user_name)).scalar_one()
    r = console.client.post(f"/users/{uid}/sync", data={"csrf": "t"})
    assert r.status_code == 200
    result = re.search(r'data-testid="user-sync-result" data-result="(\w+)"(.*?)</div>', r.text, re.S)
    assert result and result.group(1) == "fresh"
    removed = re.search(r'data-testid="user-sync-removed">(.*?)</dd>', result.group(2), re.S)
    assert removed and group_name in unescape(removed.group(1))  # the user left it in the IdP
    [ev] = console_events(console, "login.sync")
    assert ev.actor == ACTOR and ev.resource_type == "login" and ev.resource_id == uid


def test_users_of_push_or_local_directories_have_no_sync_button(console: Console) -> None:
    with session_scope(console.engine) as s:
        tokens.ensure_directory(s, name="push", kind="scim")
        pushed = user_ops.create_user(
            s, actor=Actor("scim", "push", "t"), body={"userName": "p@x.example"}
        ).id
        local = user_ops.create_user(s, actor=Actor("manual", None, "t"), body={"userName": "l@x.example"}).id
    for uid in (pushed, local):
        html = console.client.get(f"/users/{uid}").text
        assert "user-sync-button" not in html and "user-sync-unavailable" in html
    r = console.client.post(f"/users/{pushed}/sync", data={"csrf": "t"})
    assert r.status_code == 400 and "user-sync-result" in r.text and "push-only" in r.text


def test_audit_filters_by_directory_actor_action_and_time_and_shows_names(console: Console) -> None:
    console.sync()
    with session_scope(console.engine) as s:
        tokens.ensure_directory(s, name="push", kind="scim")
        user_ops.create_user(s, actor=Actor("scim", "push", "tok1"), body={"userName": "pushed@x.example"})
    html = console.client.get("/audit?directory=push").text
    rows = ids_of(html, "audit-row-")
    assert len(rows) == 1 and "pushed@x.example" in html and "scim:tok1" in html
    assert ids_of(console.client.get("/audit?actor=scim:tok").text, "audit-row-") == rows
    team_rows = ids_of(console.client.get("/audit?action=team.").text, "audit-row-")
    assert team_rows and set(team_rows).isdisjoint(rows)
    assert ids_of(console.client.get("/audit?action=user.create&directory=push").text, "audit-row-") == rows
    assert "audit-empty" in console.client.get("/audit?since=2999-01-01T00:00").text
    assert ids_of(console.client.get("/audit?until=2999-01-01&directory=push").text, "audit-row-") == rows
    bad = console.client.get("/audit?since=yesterday")
    assert bad.status_code == 200 and "audit-problem" in bad.text


# -- SCIM tokens -------------------------------------------------------------------------------


def test_a_token_for_a_push_directory_is_shown_once_with_the_tenant_url(console: Console) -> None:
    r = console.client.post(
        "/tokens", data={"csrf": "t", "directory": "push", "name": "Entra", "expires_days": "30"}
    )
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    url = re.search(r'data-testid="tenant-url">([^<]*)<', r.text)
    secret = re.search(r'data-testid="secret-token">([^<]*)<', r.text)
    assert url and url.group(1) == f"{PUBLIC_URL}/scim/v2"
    assert secret and secret.group(1).startswith(tokens.PREFIX)
    assert "Tenant URL" in r.text and "Secret Token" in r.text and "SCIM connector base URL" in r.text
    assert 'data-testid="copy-tenant-url"' in r.text and 'data-testid="copy-secret-token"' in r.text
    with session_scope(console.engine) as s:
        row = tokens.authenticate(s, secret.group(1))
        assert row is not None and row.directory == "push" and row.expires_at is not None
        tid = row.id
    listed = console.client.get("/tokens").text
    assert f"token-row-{tid}" in listed and secret.group(1) not in listed and f"revoke-{tid}" in listed
    [ev] = console_events(console, "token.create")
    assert ev.actor == f"manual:{ACTOR}"


def test_a_pull_directory_gets_no_token(console: Console) -> None:
    r = console.client.post("/tokens", data={"csrf": "t", "directory": "entra"})
    assert r.status_code == 400 and "pull directory" in r.text and "secret-token" not in r.text
    assert (
        console.client.post(
            "/tokens", data={"csrf": "t", "directory": "push", "expires_days": "0"}
        ).status_code
        == 400
    )
    with session_scope(console.engine, write=False) as s:
        assert s.execute(select(func.count()).select_from(ScimToken)).scalar_one() == 0


def test_tokens_list_admin_tokens_too_and_revoke(console: Console) -> None:
    with session_scope(console.engine) as s:
        admin_row, _ = tokens.create_token(s, directory=None, kind="admin", name="ops")
        scim_row, secret = tokens.create_token(s, directory="push", kind="scim", name="okta")
        aid, sid = admin_row.id, scim_row.id
    html = console.client.get("/tokens").text
    assert f"token-row-{aid}" in html and f"token-row-{sid}" in html
    r = console.client.post(f"/tokens/{sid}/revoke", data={"csrf": "t"})
    assert r.status_code == 303 and r.headers["location"] == "/tokens"
    html = console.client.get("/tokens").text
    assert (
        re.search(rf'data-testid="token-row-{sid}" data-state="revoked"', html)
        and f"revoke-{sid}" not in html
    )
    with session_scope(console.engine) as s:
        assert tokens.authenticate(s, secret) is None
    [ev] = console_events(console, "token.revoke")
    assert ev.actor == f"manual:{ACTOR}"
    assert console.client.post("/tokens/nope/revoke", data={"csrf": "t"}).status_code == 404


# -- hostile names -------------------------------------------------------------------------------

HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "\u202eevil.exe\u202c",
    "L" * 512,  # the longest name the store keeps (limits.NAME_MAX)
]


def test_hostile_names_arrive_escaped_on_every_page(console: Console) -> None:
    with session_scope(console.engine) as s:
        tokens.ensure_directory(s, name="push", kind="scim")
        actor = Actor("scim", "push", "t")
        uids = [
            user_ops.create_user(s, actor=actor, body={"userName": n, "displayName": n}).id for n in HOSTILE
        ]
        tids = [
            team_ops.create_team(s, actor=actor, body={"displayName": n, "members": [{"value": uid}]}).id
            for n, uid in zip(HOSTILE, uids, strict=True)
        ]
    long_query = "Q" * 5000
    pages = [
        "/users",
        f"/users?q={long_query}",
        *[f"/users/{u}" for u in uids],
        "/teams",
        *[f"/teams/{t}" for t in tids],
        "/audit",
    ]
    for path in pages:
        html = console.client.get(path).text
        assert "<script>alert" not in html and "<img src=x" not in html, path
        outside = re.sub(r'<span class="name[^"]*" dir="auto"[^>]*>[^<]*</span>', "", html)
        assert "\u202e" not in outside, path  # only inside an isolated name
    users = console.client.get("/users").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in users
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in users
    assert "(as stored: " in users and "\\u202eevil.exe\\u202c" in users  # the tricky one, made visible
    team = console.client.get(f"/teams/{tids[2]}").text
    assert '<span class="name" dir="auto" data-testid="team-name">\u202eevil.exe\u202c</span>' in team
    assert re.search(r'<span class="name[^"]*" dir="auto">L{512}</span>', users)
    assert long_query in console.client.get(f"/users?q={long_query}").text
