"""Names from IdPs and SCIM clients are hostile: every console page that shows them must show
them as text, run nothing (`window.__pwned` stays undefined) and stay within the viewport."""

from __future__ import annotations

from typing import Any

from tests.browser.screens import shot
from tests.browser.session import sign_in
from tests.browser.stack import HOSTILE, IMG, LONG, RTL, SCRIPT, TOO_LONG, Stack
from tests.browser.test_console import assert_fits, tid
from tests.daemon.helpers import runs


def assert_inert(page: Any) -> None:
    assert page.evaluate("typeof window.__pwned") == "undefined", page.url
    assert page.locator("main img").count() == 0, page.url  # no injected <img>
    assert_fits(page)


def test_hostile_names_are_text_on_every_page_and_break_no_layout(page: Any, stack: Stack) -> None:
    sign_in(page, stack, "mallory")  # an admin whose own display name is hostile
    assert page.inner_text("header .who") == IMG + SCRIPT
    assert_inert(page)

    urls = ["/", "/teams", "/users", "/audit", "/runs", f"/teams?q={SCRIPT}", "/users?q=hostile"]
    first_okta_run = min(r.id for r in runs(stack.engine, "okta"))
    urls.append(f"/runs/{first_okta_run}")  # its notes hold the group whose name is too long
    for directory in ("push", "okta"):
        for name in (SCRIPT, IMG, RTL):
            urls.append(f"/teams/{stack.team_id(directory, name)}")
    urls.append(f"/teams/{stack.team_id('push', LONG)}")
    urls.append(f"/users/{stack.user_id('okta', 'hostile@okta.example')}")
    for i in range(len(HOSTILE)):
        urls.append(f"/users/{stack.user_id('push', f'hostile{i}@push.example')}")

    for url in urls:
        page.goto(stack.console_url + url)
        assert "/signin" not in page.url, url
        assert_inert(page)
        if url.startswith("/teams/"):
            shown = page.inner_text(tid("team-name"))
            assert shown in (SCRIPT, IMG, RTL, LONG), (url, shown[:80])

    page.goto(f"{stack.console_url}/runs/{first_okta_run}")
    assert f"displayName is {len(TOO_LONG)} characters long" in page.inner_text("main")

    page.goto(stack.console_url + "/teams")
    body = page.inner_text("main")
    assert SCRIPT in body and IMG in body  # shown, as text
    shot(page, "hostile-teams")
    page.goto(f"{stack.console_url}/teams/{stack.team_id('push', LONG)}")
    shot(page, "hostile-long-name")
