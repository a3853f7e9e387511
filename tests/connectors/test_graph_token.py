"""The Graph connector's access-token provider: the SDK's checks, one credential call per origin
until the token nears expiry, CAE claims always answered fresh."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation

from connectors.graph.token import (
    REFRESH_MARGIN,
    CachingAuthenticationProvider,
    CachingTokenProvider,
    origin_of,
)

SCOPES = ["https://graph.microsoft.com/.default"]


class CountingCredential:
    """An async credential answering `tok-N` (N = call number) valid for `lifetime` seconds."""

    def __init__(self, lifetime: float = 3600.0) -> None:
        self.lifetime = lifetime
        self.calls: list[tuple[tuple[str, ...], dict[str, Any]]] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls.append((scopes, kwargs))
        return AccessToken(f"tok-{len(self.calls)}", int(time.time() + self.lifetime))

    async def close(self) -> None:
        pass


def tokens(provider: CachingTokenProvider, *uris: str, **context: Any) -> list[str]:
    async def go() -> list[str]:
        return [await provider.get_authorization_token(u, context) for u in uris]
    return asyncio.run(go())


@pytest.mark.parametrize(("uri", "origin"), [
    ("https://graph.microsoft.com/v1.0/users?$top=1", "https://graph.microsoft.com"),
    ("https://Graph.Microsoft.com", "https://graph.microsoft.com"),
    ("http://127.0.0.1:8080/v1.0/groups", "http://127.0.0.1:8080"),
    ("https://graph.microsoft.com?x=/y", "https://graph.microsoft.com"),
    ("https://graph.microsoft.com#frag/x", "https://graph.microsoft.com"),
    ("https://evil.example/graph.microsoft.com/v1.0", "https://evil.example"),
])
def test_origin_is_scheme_and_authority(uri: str, origin: str) -> None:
    assert origin_of(uri) == origin


def test_token_is_reused_for_an_origin_until_it_nears_expiry() -> None:
    cred = CountingCredential()
    provider = CachingTokenProvider(cred, scopes=SCOPES)
    got = tokens(provider, "https://graph.microsoft.com/v1.0/users",
                 "https://graph.microsoft.com/v1.0/groups?$top=999")
    assert got == ["tok-1", "tok-1"]
    assert [c[0] for c in cred.calls] == [tuple(SCOPES)]


def test_token_within_the_refresh_margin_is_fetched_again() -> None:
    cred = CountingCredential(lifetime=REFRESH_MARGIN - 10)
    provider = CachingTokenProvider(cred, scopes=SCOPES)
    assert tokens(provider, *["https://graph.microsoft.com/v1.0/users"] * 3) == ["tok-1", "tok-2", "tok-3"]


def test_each_origin_gets_its_own_token() -> None:
    cred = CountingCredential()
    provider = CachingTokenProvider(cred, scopes=[])  # scopes derived from each host
    got = tokens(provider, "https://graph.microsoft.com/v1.0/users",
                 "https://graph.microsoft.us/v1.0/users", "https://graph.microsoft.com/v1.0/groups")
    assert got == ["tok-1", "tok-2", "tok-1"]
    assert [c[0] for c in cred.calls] == [("https://graph.microsoft.com/.default",),
                                          ("https://graph.microsoft.us/.default",)]


def test_plain_http_outside_loopback_is_refused_every_time() -> None:
    cred = CountingCredential()
    provider = CachingTokenProvider(cred, scopes=SCOPES)
    assert tokens(provider, "http://127.0.0.1:9/v1.0/users") == ["tok-1"]
    for _ in range(2):
        with pytest.raises(Exception, match="Only https is supported"):
            tokens(provider, "http://graph.microsoft.com/v1.0/users")
    assert len(cred.calls) == 1


def test_host_outside_allowed_hosts_gets_no_token_and_no_credential_call() -> None:
    cred = CountingCredential()
    provider = CachingTokenProvider(cred, scopes=SCOPES, allowed_hosts=["graph.microsoft.com"])
    assert tokens(provider, "https://graph.microsoft.com/v1.0/users",
                  "https://evil.example/v1.0/users", "https://evil.example/v1.0/users") == ["tok-1", "", ""]
    assert len(cred.calls) == 1


def test_cae_claims_always_ask_the_credential_and_replace_the_cached_token() -> None:
    cred = CountingCredential()
    provider = CachingTokenProvider(cred, scopes=SCOPES)
    url = "https://graph.microsoft.com/v1.0/users"
    claims = base64.b64encode(b'{"access_token":{"nbf":{"essential":true}}}').decode()
    assert tokens(provider, url) == ["tok-1"]
    assert tokens(provider, url, claims=claims) == ["tok-2"]
    assert tokens(provider, url) == ["tok-2"]
    assert cred.calls[1][1]["claims"] == '{"access_token":{"nbf":{"essential":true}}}'
    assert cred.calls[1][1]["enable_cae"] is True


def test_authentication_provider_sets_the_bearer_header_from_the_cached_token() -> None:
    cred = CountingCredential()
    auth = CachingAuthenticationProvider(cred, scopes=SCOPES)

    async def go() -> list[str]:
        out = []
        for _ in range(2):
            info = RequestInformation(Method.GET)
            info.url = "https://graph.microsoft.com/v1.0/users"
            await auth.authenticate_request(info)
            out.append(info.request_headers["authorization"])
        return out

    assert asyncio.run(go()) == ["Bearer tok-1", "Bearer tok-1"]
    assert len(cred.calls) == 1
