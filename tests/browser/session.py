"""Signing in to the console as a person does: through the fake IdP's login form."""

from __future__ import annotations

from typing import Any

from tests.browser.stack import Stack


def sign_in(page: Any, stack: Stack, username: str, *, path: str = "/") -> None:
    """Open `path`, get sent to the sign-in page, choose SSO and type `username` at the IdP.

    Returns on the page the console answers with after the IdP's redirect back."""
    page.goto(stack.console_url + path)
    page.wait_for_url("**/signin?**")
    page.click("#sso")
    page.wait_for_url(stack.oidc.issuer + "/authorize?**")
    page.fill("#username", username)
    page.click("button[type=submit]")
    page.wait_for_url(stack.console_url + "/**")
    page.wait_for_load_state("load")


def signed_in_as_alice(page: Any, stack: Stack, path: str = "/") -> None:
    sign_in(page, stack, "alice", path=path)
    assert page.url.startswith(stack.console_url), page.url
    assert "/signin" not in page.url, page.url
