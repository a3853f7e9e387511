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

    first_okta_run = min(r.id for r in runs(stack.engine, "okta"))
    urls = ["/", "/teams", "/users", "/audit", "/runs", f"/teams?q={SCRIPT}", "/users?q=hostile"]
    urls.append(f"/runs/{first_okta_run}")  # its notes hold the group whose name is too long
    urls.append(f"/users/{stack.user_id('okta', 'hostile@okta.example')}")
    for i in range(len(HOSTILE)):
        urls.append(f"/users/{stack.user_id('push', f'hostile{i}@push.example')}")
    for url in urls:
        page.goto(stack.console_url + url)
        assert "/signin" not in page.url, url
        assert_inert(page)

    for directory in ("push", "okta"):
        for name in HOSTILE:
            page.goto(f"{stack.console_url}/teams/{stack.team_id(directory, name)}")
            assert_inert(page)
            assert page.inner_text(tid("team-name")) == name, (directory, name[:40])
            if name == RTL:  # the direction override is also shown as such: the admin sees the trick
                assert "\\u202e" in page.inner_text("main")

    page.goto(f"{stack.console_url}/runs/{first_okta_run}")
    assert f"displayName is {len(TOO_LONG)} characters long" in page.inner_text("main")

    page.goto(stack.console_url + "/teams")
    body = page.inner_text("main")
    assert SCRIPT in body and IMG in body  # shown, as text
    shot(page, "hostile-teams")
    page.goto(f"{stack.console_url}/teams/{stack.team_id('push', LONG)}")
    shot(page, "hostile-long-name")
