"""The admin console in headless Chromium: sign-in through the fake IdP's form, every page,
Sync now, Approve and apply, SCIM tokens, CSRF refusal and sign-out.

Every test runs in a fresh browser context against the one daemon of the session (`stack`);
each arranges the IdP data it needs, so any order and any subset pass. The `page` fixture fails
a test whose pages logged an error or warning, threw, or loaded something that failed.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from tests.browser.screens import VIEWPORT, shot
from tests.browser.session import sign_in, signed_in_as_alice
from tests.browser.stack import ALICE_EMAIL, IMG, MAX_REMOVALS, Stack
from tests.browser.watch import PageWatch

#: how far a page may be wider than the 1280 px viewport before it scrolls sideways (px)
OVERFLOW_TOLERANCE = 2


def tid(name: str) -> str:
    return f"[data-testid='{name}']"


def wait_run_shown_finished(page: Any) -> None:
    """Wait until the run page shows the run ended (it follows a running run live, then asks for
    a reload to show the changes), and reload it as the admin would."""
    page.locator("[data-run-status]:not([data-run-status='running'])").wait_for()
    page.reload()


def page_width(page: Any) -> int:
    return int(page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"))


def assert_fits(page: Any) -> None:
    width = page_width(page)
    assert width <= 1280 + OVERFLOW_TOLERANCE, f"{page.url} is {width} px wide at a 1280 px viewport"


def test_sign_in_through_the_identity_provider_shows_the_admins_on_login_sync(
    page: Any, stack: Stack
) -> None:
    tenant = stack.okta.tenant
    joined = tenant.add_group(f"{IMG} joined {secrets.token_hex(3)}")  # not pulled: her sign-in adds it
    tenant.add_member(joined.id, tenant.find_user(ALICE_EMAIL).id)

    page.goto(stack.console_url + "/teams")
    page.wait_for_url("**/signin?**")
    assert page.get_by_role("heading", name="Sign in to syncd").is_visible()
    shot(page, "signin")
    page.click("#sso")
    page.wait_for_url(stack.oidc.issuer + "/authorize?**")
    page.fill("#username", "alice")
    page.click("button[type=submit]")
    page.wait_for_url(stack.console_url + "/teams")

    assert page.inner_text("header .who") == "Alice Admin"
    flash = page.locator(".flash").inner_text()
    assert flash.startswith(f"On-login sync of {ALICE_EMAIL} in okta:"), flash
    assert joined.name in flash  # the new team, by name, as text
    assert page.evaluate("typeof window.__pwned") == "undefined"
    shot(page, "signed-in")


def test_a_non_admin_gets_the_403_page_and_no_session(page: Any, watch: PageWatch, stack: Stack) -> None:
    watch.expect(403, "/signin/callback")
    with page.expect_response(lambda r: "/signin/callback" in r.url) as answer:
        sign_in(page, stack, "bob")
    assert answer.value.status == 403
    assert page.get_by_role("heading", name="Not a syncd admin").is_visible()
    assert "bob@elsewhere.example" in page.inner_text("main")
    shot(page, "not-an-admin")
    page.goto(stack.console_url + "/runs")
    page.wait_for_url("**/signin?**")


PAGES = [
    ("/", "overview", "dir-row-okta"),
    ("/runs", "runs", "runs"),
    ("/teams", "teams", None),
    ("/users", "users", None),
    ("/audit", "audit", None),
    ("/tokens", "tokens", "token-form"),
    ("/account", "account", None),
]


@pytest.mark.parametrize(("path", "name", "marker"), PAGES, ids=[p[1] for p in PAGES])
def test_each_page_loads_cleanly_and_fits_the_viewport(
    page: Any, stack: Stack, path: str, name: str, marker: str | None
) -> None:
    signed_in_as_alice(page, stack, path)
    assert page.url == stack.console_url + path
    if marker:
        assert page.locator(tid(marker)).first.is_visible()
    assert page.locator("main h1").first.inner_text().strip()
    assert_fits(page)
    shot(page, name)


def test_a_team_and_a_user_page_show_names_members_and_teams(page: Any, stack: Stack) -> None:
    team_id = stack.team_id("okta", "team-00000")
    signed_in_as_alice(page, stack, f"/teams/{team_id}")
    assert page.inner_text(tid("team-name")) == "team-00000"
    members = page.locator(tid("members")).inner_text()
    some_member = sorted(stack.member_names(team_id))[0]
    assert some_member in members
    assert "pull" in members  # each membership's source
    assert_fits(page)
    shot(page, "team")

    user_id = stack.user_id("okta", some_member)
    page.goto(f"{stack.console_url}/users/{user_id}")
    assert page.inner_text(tid("user-name")) == some_member
    assert "team-00000" in page.inner_text(tid("user-teams"))
    page.click(tid("user-sync-button"))
    result = page.locator(tid("user-sync-result"))
    result.wait_for()
    assert result.get_attribute("data-result") == "fresh", result.inner_text()
    assert_fits(page)
    shot(page, "user")


def test_the_audit_trail_is_paged_and_filtered_and_shows_names(page: Any, stack: Stack) -> None:
    signed_in_as_alice(page, stack, "/audit")
    rows = "[data-testid^='audit-row-']"

    def shown() -> list[str]:
        return [r.get_attribute("data-testid") for r in page.locator(rows).all()]

    first = shown()
    assert len(first) == 50  # a full page: the seeded store holds more events than that
    page.click(tid("pager-next"))
    page.wait_for_url("**/audit?*page=2*")
    assert shown() and not set(shown()) & set(first)
    assert_fits(page)

    page.goto(stack.console_url + "/audit")
    page.fill("input[name=actor]", f"console:oidc:{ALICE_EMAIL}")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/audit?*actor=*")
    actions = page.locator(f"{rows} td:nth-child(3)").all_inner_texts()
    assert "console.signin" in {a.split()[0] for a in actions}, actions
    assert all(ALICE_EMAIL in a for a in page.locator(f"{rows} td:nth-child(2)").all_inner_texts())

    page.goto(stack.console_url + "/audit?directory=push")
    assert "hostile0@push.example" in page.inner_text(tid("audit"))  # names, not only ids


def test_sync_now_starts_a_run_and_shows_it(page: Any, stack: Stack) -> None:
    signed_in_as_alice(page, stack)
    before = stack.last_run_id("okta")
    page.click(tid("sync-now-okta"))
    page.wait_for_url(f"{stack.console_url}/runs/*")
    run_id = int(page.url.rsplit("/", 1)[1])
    assert run_id > before
    run = stack.wait_run("okta", after=before)
    assert run.id == run_id and run.trigger != "schedule"
    wait_run_shown_finished(page)  # the page follows the run live, then shows its outcome
    assert page.locator(tid("run-outcome")).inner_text().strip()
    page.goto(stack.console_url + "/")
    assert (
        str(run_id) in page.inner_text(tid("dir-row-okta"))
        or page.locator(f"{tid('dir-row-okta')} a[href='/runs/{run_id}']").count()
    )


def test_approve_and_apply_a_safety_stopped_run_shows_names_and_updates_the_team(
    page: Any, stack: Stack
) -> None:
    tenant = stack.okta.tenant
    group = next(g for g in tenant.groups.values() if g.name == "team-00001")
    leaving = sorted(group.user_ids)[: MAX_REMOVALS + 1]
    leaving_names = {tenant.users[u].user_name for u in leaving}
    signed_in_as_alice(page, stack)  # before the plan: her on-login sync writes to the directory
    for uid in leaving:
        tenant.remove_member(group.id, uid)

    before = stack.last_run_id("okta")
    page.click(tid("sync-now-okta"))
    page.wait_for_url(f"{stack.console_url}/runs/*")
    stopped = stack.wait_run("okta", after=before)
    assert stopped.outcome == "stopped", (stopped.outcome, stopped.error)
    assert page.url == f"{stack.console_url}/runs/{stopped.id}"
    wait_run_shown_finished(page)

    changes = page.locator(tid("plan-change")).all_inner_texts()
    for name in leaving_names:  # names, not ids
        assert any(name in c and "team-00001" in c for c in changes), (name, changes)
    assert page.locator(tid("approve-button")).is_visible()
    assert_fits(page)
    shot(page, "run-approve")

    page.click(tid("approve-button"))
    page.wait_for_load_state("load")
    applied = stack.wait_run("okta", after=stopped.id)
    assert applied.outcome == "applied", (applied.outcome, applied.error)
    assert not page.locator(tid("approve-button")).count()

    team_id = stack.team_id("okta", "team-00001")
    assert not leaving_names & stack.member_names(team_id)
    page.goto(f"{stack.console_url}/teams/{team_id}")
    members = page.locator(tid("members")).inner_text()
    for name in leaving_names:
        assert name not in members
    shot(page, "team-after-approve")


def test_approving_a_plan_the_directory_has_moved_past_is_refused_with_a_fresh_plan_offered(
    page: Any, watch: PageWatch, stack: Stack
) -> None:
    tenant = stack.okta.tenant
    group = next(g for g in tenant.groups.values() if g.name == "team-00002")
    signed_in_as_alice(page, stack)
    for uid in sorted(group.user_ids)[: MAX_REMOVALS + 1]:
        tenant.remove_member(group.id, uid)
    before = stack.last_run_id("okta")
    page.click(tid("sync-now-okta"))
    stopped = stack.wait_run("okta", after=before)
    assert stopped.outcome == "stopped", (stopped.outcome, stopped.error)
    wait_run_shown_finished(page)

    # the directory moves on: a user's on-login sync ("Sync this user now") adds a membership
    mover = tenant.find_user("hostile@okta.example")
    moved_to = tenant.add_group(f"moved {secrets.token_hex(3)}")
    tenant.add_member(moved_to.id, mover.id)
    page.goto(f"{stack.console_url}/users/{stack.user_id('okta', mover.user_name)}")
    page.click(tid("user-sync-button"))
    result = page.locator(tid("user-sync-result"))
    result.wait_for()
    assert moved_to.name in page.inner_text(tid("user-sync-added")), result.inner_text()

    page.goto(f"{stack.console_url}/runs/{stopped.id}")
    watch.expect(409, f"/runs/{stopped.id}/approve")
    page.click(tid("approve-button"))
    refused = page.locator(tid("approve-refused"))
    refused.wait_for()
    assert "was not applied" in refused.inner_text()
    assert stack.last_run_id("okta") == stopped.id  # nothing ran, nothing was written
    shot(page, "run-approve-refused")

    page.click(tid("plan-again"))
    page.wait_for_url(f"{stack.console_url}/runs/*")
    fresh = stack.wait_run("okta", after=stopped.id)
    assert fresh.dry_run and fresh.outcome in ("planned", "stopped"), (fresh.outcome, fresh.error)
    wait_run_shown_finished(page)
    assert any("team-00002" in c for c in page.locator(tid("plan-change")).all_inner_texts())


def test_the_console_works_with_javascript_off(browser: Any, watch: PageWatch, stack: Stack) -> None:
    ctx = browser.new_context(viewport=VIEWPORT, java_script_enabled=False)
    try:
        page = ctx.new_page()
        watch.attach(page)
        signed_in_as_alice(page, stack)
        for path, _name, marker in PAGES:
            page.goto(stack.console_url + path)
            if marker:
                assert page.locator(tid(marker)).first.is_visible(), path
        name = f"no-js {secrets.token_hex(3)}"
        page.goto(stack.console_url + "/tokens")
        page.fill("input[name=name]", name)
        page.click(tid("create-token"))
        assert page.inner_text(tid("secret-token")).strip()
        assert page.inner_text(tid("tenant-url")).strip() == stack.scim_url + "/scim/v2"
        assert not page.locator(tid("copy-secret-token")).is_visible()  # copying needs JS
        assert len(stack.token_ids(name)) == 1
        watch.check()
    finally:
        ctx.close()


def test_a_scim_token_shows_its_tenant_url_and_secret_once_and_can_be_revoked(
    page: Any, context: Any, stack: Stack
) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.console_url)
    name = f"Entra provisioning {secrets.token_hex(3)}"
    signed_in_as_alice(page, stack, "/tokens")
    page.select_option(tid("token-directory"), "push")
    page.fill("input[name=name]", name)
    page.click(tid("create-token"))
    created = page.locator(tid("token-created"))
    created.wait_for()

    tenant_url = page.inner_text(tid("tenant-url")).strip()
    secret = page.inner_text(tid("secret-token")).strip()
    assert tenant_url == stack.scim_url + "/scim/v2"
    text = created.inner_text()
    assert "Tenant URL" in text and "Secret Token" in text  # as Entra labels them
    page.click(tid("copy-secret-token"))
    assert page.evaluate("navigator.clipboard.readText()") == secret
    page.click(tid("copy-tenant-url"))
    assert page.evaluate("navigator.clipboard.readText()") == tenant_url
    shot(page, "token-created")

    scim = {"Authorization": f"Bearer {secret}"}
    assert httpx.get(tenant_url + "/Users", headers=scim, timeout=30).status_code == 200
    assert httpx.get(stack.console_url + "/v1/runs", headers=scim, timeout=30).status_code in (401, 403)

    page.goto(stack.console_url + "/tokens")  # shown once: never again
    assert secret not in page.content()
    [token_id] = stack.token_ids(name)
    row = page.locator(tid(f"token-row-{token_id}"))
    assert name in row.inner_text()
    page.click(tid(f"revoke-{token_id}"))
    page.wait_for_load_state("load")
    assert page.locator(tid(f"token-row-{token_id}")).get_attribute("data-state") == "revoked"
    assert httpx.get(tenant_url + "/Users", headers=scim, timeout=30).status_code == 401


def test_a_form_with_a_tampered_csrf_token_is_refused(page: Any, watch: PageWatch, stack: Stack) -> None:
    name = f"forged {secrets.token_hex(3)}"
    signed_in_as_alice(page, stack, "/tokens")
    page.fill("input[name=name]", name)
    page.eval_on_selector(f"{tid('token-form')} input[name=csrf]", "el => { el.value = 'x' + el.value }")
    watch.expect(403, "/tokens")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click(tid("create-token"))
    assert answer.value.status == 403
    page.wait_for_load_state("load")
    assert stack.token_ids(name) == []
    assert page.locator(tid("secret-token")).count() == 0
    shot(page, "csrf-refused")


def test_sign_out_ends_the_session(page: Any, stack: Stack) -> None:
    signed_in_as_alice(page, stack, "/runs")
    page.click("form.signout button[type=submit]")
    page.wait_for_url("**/signin?reason=signed_out")
    page.goto(stack.console_url + "/runs")
    page.wait_for_url("**/signin?**")
    assert "next=%2Fruns" in page.url
