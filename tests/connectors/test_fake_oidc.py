"""The fake OpenID Connect provider is as strict as a real one where the console's sign-in
relies on it: registered redirect URIs, client authentication, PKCE S256, single-use codes,
the nonce echoed in an RS256 ID token that verifies against its JWKS."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from connectors.testing.oidc import FakeOidc, serve_oidc

REDIRECT = "http://127.0.0.1:1/signin/callback"
VERIFIER = "v" * 64


def challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@pytest.fixture
def idp() -> Iterator[FakeOidc]:
    fake = FakeOidc(redirect_uris={REDIRECT})
    fake.add_user("alice", email="alice@x.example", name="Alice", groups=("admins",))
    srv = serve_oidc(fake)
    try:
        yield fake
    finally:
        srv.stop()


def authorize(idp: FakeOidc, **over: str) -> httpx.Response:
    params = {
        "response_type": "code",
        "client_id": idp.client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid email",
        "state": "st",
        "nonce": "n-123",
        "code_challenge": challenge(VERIFIER),
        "code_challenge_method": "S256",
        **over,
    }
    return httpx.post(f"{idp.issuer}/authorize", data={**params, "username": "alice"})


def code_of(r: httpx.Response) -> str:
    assert r.status_code == 303, r.text
    q = httpx.URL(r.headers["location"]).params
    assert q["state"] == "st"
    return q["code"]


def token(idp: FakeOidc, code: str, *, how: str = "basic", **over: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
    }
    form.update(over)
    auth: Any = None
    if how == "basic":
        auth = (idp.client_id, idp.client_secret)
    elif how == "post":
        form |= {"client_id": idp.client_id, "client_secret": idp.client_secret}
    elif how == "both":
        auth = (idp.client_id, idp.client_secret)
        form |= {"client_id": idp.client_id, "client_secret": idp.client_secret}
    return httpx.post(f"{idp.issuer}/token", data=form, auth=auth)


def test_discovery_and_an_id_token_that_verifies(idp: FakeOidc) -> None:
    meta = httpx.get(f"{idp.issuer}/.well-known/openid-configuration").json()
    assert meta["issuer"] == idp.issuer and meta["code_challenge_methods_supported"] == ["S256"]
    r = token(idp, code_of(authorize(idp)), how="post")
    assert r.status_code == 200, r.text
    keys = KeySet.import_key_set(httpx.get(meta["jwks_uri"]).json())
    claims = jwt.decode(r.json()["id_token"], keys, algorithms=["RS256"]).claims
    assert claims["iss"] == idp.issuer and claims["aud"] == idp.client_id and claims["nonce"] == "n-123"
    assert claims["groups"] == ["admins"] and claims["email"] == "alice@x.example"
    info = httpx.get(
        meta["userinfo_endpoint"], headers={"Authorization": f"Bearer {r.json()['access_token']}"}
    )
    assert info.json()["sub"] == claims["sub"]
    assert httpx.get(meta["userinfo_endpoint"], headers={"Authorization": "Bearer nope"}).status_code == 401


def test_an_unregistered_redirect_uri_gets_no_redirect(idp: FakeOidc) -> None:
    r = authorize(idp, redirect_uri="http://evil.example/cb")
    assert r.status_code == 400 and "location" not in r.headers


def test_pkce_is_required_and_checked(idp: FakeOidc) -> None:
    r = authorize(idp, code_challenge_method="plain")
    assert r.status_code == 303 and "error=invalid_request" in r.headers["location"]
    r = token(idp, code_of(authorize(idp)), code_verifier="w" * 64)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert idp.events == ["pkce_failed"]


def test_a_code_is_single_use_and_bound_to_its_redirect_uri(idp: FakeOidc) -> None:
    code = code_of(authorize(idp))
    assert token(idp, code).status_code == 200
    again = token(idp, code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    other = token(idp, code_of(authorize(idp)), redirect_uri="http://127.0.0.1:1/other")
    assert other.status_code == 400
    assert idp.events == ["issued", "code_reused", "redirect_mismatch"]


@pytest.mark.parametrize("how", ["none", "both", "wrong"])
def test_client_authentication_is_one_valid_method(idp: FakeOidc, how: str) -> None:
    code = code_of(authorize(idp))
    if how == "wrong":
        r = httpx.post(
            f"{idp.issuer}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "code_verifier": VERIFIER,
            },
            auth=(idp.client_id, "not-the-secret"),
        )
    else:
        r = token(idp, code, how=how)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
