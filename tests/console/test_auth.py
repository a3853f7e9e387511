"""The console's authorisation matrix, on real uvicorn with both listeners and a fake
OpenID Connect provider: who gets in, who does not, and what each listener serves."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import select

from syncd.console.auth.session import COOKIE
from syncd.service import tokens
from syncd.store import session_scope
from syncd.store.models import AuditEvent
from tests.console.conftest import (
    ConsoleEnv,
    forged_session,
    form_csrf,
    session_csrf,
    sign_in_token,
    sso_sign_in,
)


def audit(env: ConsoleEnv, action: str) -> list[AuditEvent]:
    with session_scope(env.engine, write=False) as s:
        return list(s.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars())


def test_sso_admin_signs_in_and_sees_her_on_login_sync(console_env: ConsoleEnv) -> None:
    env = console_env
    with env.client() as c:
        r = sso_sign_in(c, env, "alice", next_path="/account")
        assert r.status_code == 303 and r.headers["location"] == "/account"
        page = c.get("/account")
        assert page.status_code == 200
        assert "Alice Admin" in page.text and "SSO (OpenID Connect)" in page.text
        assert f"On-login sync of {env.alice_email} in entra" in page.text  # the flash, shown once
        assert "On-login sync" not in c.get("/account").text
        cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(COOKIE + "="))
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # http
    assert env.oidc.events == ["issued"]
    (event,) = audit(env, "console.signin")
    assert event.actor == f"console:oidc:{env.alice_email}" and event.directory is None
    assert event.after["login_sync"]["result"] == "fresh"


def test_a_non_admin_sso_user_gets_403_and_no_session(console_env: ConsoleEnv) -> None:
    env = console_env
    with env.client() as c:
        r = sso_sign_in(c, env, "bob")
        assert r.status_code == 403 and "Not a syncd admin" in r.text
        r = c.get("/account")
        assert r.status_code == 303 and r.headers["location"].startswith("/signin?next=%2Faccount")
    (refused,) = audit(env, "console.signin.refused")
    assert refused.actor == "console:oidc:bob@elsewhere.example"
    assert audit(env, "console.signin") == []


def test_idle_expired_and_too_old_sessions_go_back_to_sign_in(console_env: ConsoleEnv) -> None:
    env = console_env
    now = time.time()
    admin = {
        "subject": "s1",
        "name": "Alice Admin",
        "email": env.alice_email,
        "via": "oidc",
        "directory": "entra",
    }
    idle = env.settings.console.idle_timeout
    cases = {
        "fresh": dict(t0=now - 60, seen=now - 10),
        "idle": dict(t0=now - idle - 120, seen=now - idle - 60),
        "too old": dict(t0=now - env.settings.console.max_age - 60, seen=now - 10),
    }
    answers = {}
    for name, times in cases.items():
        cookie = forged_session(env, sid=f"sid-{name}", csrf="c", admin=admin, **times)
        with env.client() as c:
            c.cookies.set(COOKIE, cookie)
            answers[name] = c.get("/account")
    assert answers["fresh"].status_code == 200 and "Alice Admin" in answers["fresh"].text
    for name in ("idle", "too old"):
        assert answers[name].status_code == 303, name
        assert answers[name].headers["location"] == "/signin?next=%2Faccount&reason=expired"
    with env.client() as c:
        c.cookies.set(COOKIE, "x" + forged_session(env, sid="s", csrf="c", admin=admin, t0=now, seen=now))
        assert c.get("/account").status_code == 303  # a bad signature is no session
        assert "Your session expired" in c.get("/signin", params={"reason": "expired"}).text


def test_a_scim_token_opens_nothing_on_the_admin_listener(console_env: ConsoleEnv) -> None:
    env = console_env
    scim = {"Authorization": f"Bearer {env.scim_token}"}
    with httpx.Client(base_url=env.admin_url, timeout=30) as c:
        for path in ("/v1/runs", "/v1/directories"):
            assert c.get(path, headers=scim).status_code == 401, path
            assert c.get(path, headers={"Authorization": f"Bearer {env.admin_token}"}).status_code == 200
        assert c.post("/v1/logins", headers=scim, json={"directory": "entra", "user": "x"}).status_code == 401
        for token in (env.scim_token, env.admin_token):  # the console reads its cookie only
            r = c.get("/account", headers={"Authorization": f"Bearer {token}", "Accept": "text/html"})
            assert r.status_code == 303 and r.headers["location"].startswith("/signin")
            assert c.get("/account", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        assert c.get("/scim/v2/Users", headers=scim).status_code == 404  # SCIM is not served here


def test_the_scim_listener_serves_no_console_or_admin_path(console_env: ConsoleEnv) -> None:
    env = console_env
    paths = [
        "/",
        "/signin",
        "/account",
        "/static/console.css",
        "/v1/runs",
        "/v1/docs",
        "/v1/openapi.json",
        "/metrics",
    ]
    with httpx.Client(base_url=env.scim_url, timeout=30) as c:
        for token in (None, env.scim_token, env.admin_token):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            for path in paths:
                assert c.get(path, headers=headers).status_code == 404, (path, token)
        assert c.post("/signin/token", data={"token": env.admin_token}).status_code == 404
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
        users = c.get("/scim/v2/Users", headers={"Authorization": f"Bearer {env.scim_token}"})
        assert users.status_code == 200 and users.json()["totalResults"] == 0
    with httpx.Client(base_url=env.admin_url, timeout=30) as c:
        assert c.get("/healthz").status_code == 200 and c.get("/metrics").status_code == 200


def test_posts_without_the_session_csrf_token_are_refused(console_env: ConsoleEnv) -> None:
    env = console_env
    with env.client() as c:
        r = c.post("/signin/token", data={"token": env.admin_token})  # no csrf: no sign-in either
        assert r.status_code == 403 and "CSRF" in r.text
        assert sign_in_token(c, env.admin_token).status_code == 303
        page = c.get("/account")
        csrf = form_csrf(page.text)
        assert c.post("/signout").status_code == 403
        assert (
            c.post("/signout", data={"csrf": csrf[:-1] + ("x" if csrf[-1] != "x" else "y")}).status_code
            == 403
        )
        assert c.get("/account").status_code == 200  # still signed in
        r = c.post("/signout", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 303
    with env.client() as other:  # another browser's token is not this session's
        other_csrf = form_csrf(other.get("/signin").text)
        with env.client() as c:
            sign_in_token(c, env.admin_token)
            assert c.post("/signout", data={"csrf": other_csrf}).status_code == 403


def test_break_glass_signs_in_with_a_live_admin_token_only(console_env: ConsoleEnv) -> None:
    env = console_env
    with env.client() as c:
        assert "Sign in with token" in c.get("/signin").text
        bad = sign_in_token(c, env.scim_token)  # a SCIM token is not an admin token
        assert bad.status_code == 401 and "not a live admin token" in bad.text
        assert sign_in_token(c, env.admin_token).status_code == 303
        assert "an admin token (break-glass)" in c.get("/account").text
        with session_scope(env.engine) as s:
            (row,) = [t for t in tokens.list_tokens(s) if t.kind == "admin"]
            tokens.revoke_token(s, token=row.id)
        assert c.get("/account").status_code == 303  # the session ended with its token
    (event,) = audit(env, "console.signin")
    assert event.actor.startswith("console:token:") and event.after["via"] == "token"


@pytest.mark.parametrize("console_toml", ["break_glass = false"], indirect=True)
def test_break_glass_can_be_turned_off(console_env: ConsoleEnv) -> None:
    env = console_env
    with env.client() as c:
        page = c.get("/signin")
        assert "Sign in with SSO" in page.text and "Sign in with token" not in page.text
        r = c.post("/signin/token", data={"csrf": session_csrf(c), "token": env.admin_token})
        assert r.status_code == 403 and "turned off" in r.text
        assert c.get("/account").status_code == 303


def test_sign_out_ends_the_session_even_for_a_replayed_cookie(console_env: ConsoleEnv) -> None:
    env = console_env
    with env.client() as c:
        sso_sign_in(c, env, "alice")
        old = c.cookies[COOKIE]
        csrf = form_csrf(c.get("/account").text)
        r = c.post("/signout", data={"csrf": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/signin?reason=signed_out"
        assert "You are signed out" in c.get(r.headers["location"]).text
        assert c.get("/account").status_code == 303
    with env.client() as thief:
        thief.cookies.set(COOKIE, old)
        assert thief.get("/account").status_code == 303
    (event,) = audit(env, "console.signout")
    assert event.actor == f"console:oidc:{env.alice_email}"


def test_a_callback_without_the_sign_in_s_state_signs_no_one_in(console_env: ConsoleEnv) -> None:
    env = console_env
    with env.client() as c:
        r = c.get("/signin/oidc")
        assert r.status_code == 303
        r = c.get("/signin/callback", params={"code": "forged", "state": "not-the-state"})
        assert r.status_code == 400 and "Try again" in r.text
        assert c.get("/account").status_code == 303
        done = sso_sign_in(c, env, "alice")
        assert done.status_code == 303
        replay = c.get(str(done.request.url))  # the same callback again: code and state spent
        assert replay.status_code == 400
    assert env.oidc.events == ["issued"]


def test_unknown_paths_are_a_plain_404_page(console_env: ConsoleEnv) -> None:
    with console_env.client() as c:
        r = c.get("/no/such/page")
        assert r.status_code == 404 and "There is no page at /no/such/page" in r.text
        assert "<script" not in r.text
        assert r.headers["content-security-policy"].startswith("default-src 'self'")


@pytest.mark.parametrize("fault", ["wrong_nonce", "wrong_aud", "wrong_iss", "expired", "foreign_key"])
def test_an_id_token_that_does_not_verify_signs_no_one_in(console_env: ConsoleEnv, fault: str) -> None:
    env = console_env
    env.oidc.faults.add(fault)
    with env.client() as c:
        r = sso_sign_in(c, env, "alice")
        assert r.status_code == 401 and "Sign-in failed: the ID token is not valid" in r.text, r.text
        assert c.get("/account").status_code == 303
    assert audit(env, "console.signin") == []
