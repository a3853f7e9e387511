"""The access-token provider kiota's bearer authentication asks before every Graph request.

`CachingTokenProvider` is kiota-authentication-azure's `AzureIdentityAccessTokenProvider`
(the SDK's allowed-hosts validation, https-only except loopback, scopes, CAE claims) with
one addition: the `AccessToken` the credential answers for an origin (`scheme://host[:port]`)
is reused for that origin until `REFRESH_MARGIN` seconds before it expires. The SDK's own
provider asks the credential on every request: two URL parses, a tracing span and the
credential's cache lookup (an MSAL cache search for azure-identity credentials) per page.

Invariants:

- A token is only reused for the origin it was issued for, and only after the SDK's checks
  passed for that origin; a URL the checks refuse (raise, or `""` for a host outside
  `allowed_hosts`) is checked again on every request and never cached.
- A request carrying CAE claims (kiota's retry after a 401 challenge) always asks the
  credential; the token it answers replaces the cached one.
"""

from __future__ import annotations

import inspect
import time
from typing import Any

from azure.core.credentials import AccessToken
from kiota_authentication_azure.azure_identity_access_token_provider import (
    AzureIdentityAccessTokenProvider,
)
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)

#: Ask the credential again this many seconds before a cached token expires.
REFRESH_MARGIN = 300.0


def origin_of(uri: str) -> str:
    """`scheme://authority` of an absolute URL (everything before the path, query or fragment)."""
    start = uri.find("//")
    start = start + 2 if start >= 0 else 0
    end = len(uri)
    for sep in "/?#":
        i = uri.find(sep, start)
        if 0 <= i < end:
            end = i
    return uri[:end].lower()


class _Remembering:
    """An `AsyncTokenCredential` passing `get_token` through and keeping each `AccessToken` it
    answered, by token string, until the provider takes it (`take`)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._answered: dict[str, AccessToken] = {}

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        tok = self.inner.get_token(*scopes, **kwargs)
        if inspect.isawaitable(tok):
            tok = await tok
        if isinstance(tok, AccessToken):
            self._answered[tok.token] = tok
        return tok

    def take(self, token: str) -> AccessToken | None:
        return self._answered.pop(token, None)


class CachingTokenProvider(AzureIdentityAccessTokenProvider):
    """`AzureIdentityAccessTokenProvider` reusing each origin's token until shortly before it
    expires (see the module docstring)."""

    def __init__(self, credential: Any, *, scopes: list[str], allowed_hosts: list[str] | None = None,
                 is_cae_enabled: bool = True) -> None:
        self._remembering = _Remembering(credential)
        super().__init__(self._remembering, None, scopes, allowed_hosts or [],
                         is_cae_enabled=is_cae_enabled)
        self._tokens: dict[str, AccessToken] = {}

    async def get_authorization_token(self, uri: str,
                                      additional_authentication_context: dict[str, Any] = {}  # noqa: B006
                                      ) -> str:
        claims = additional_authentication_context.get(self.CLAIMS_KEY)
        origin = origin_of(uri)
        if not claims:
            cached = self._tokens.get(origin)
            if cached is not None and cached.expires_on - REFRESH_MARGIN > time.time():
                return cached.token
        token = await super().get_authorization_token(uri, additional_authentication_context)
        answered = self._remembering.take(token) if token else None
        if answered is not None:
            self._tokens[origin] = answered
        return token


class CachingAuthenticationProvider(AzureIdentityAuthenticationProvider):
    """kiota's bearer-token authentication over a `CachingTokenProvider`."""

    def __init__(self, credential: Any, *, scopes: list[str], allowed_hosts: list[str] | None = None
                 ) -> None:
        super().__init__(credential, scopes=scopes, allowed_hosts=allowed_hosts or [])
        self.access_token_provider = CachingTokenProvider(credential, scopes=scopes,
                                                          allowed_hosts=allowed_hosts)
