"""Credentials for the Graph connector.

Production uses azure-identity's async credentials (client secret or certificate) against
`https://login.microsoftonline.com` or the authority host of `token_url`. azure-identity
refuses plain-http authorities, so for a loopback `token_url` (tests, `syncd demo`) the
connector uses `ClientCredentialsCredential`, which performs the same OAuth 2.0 client
credentials grant (`POST {root}/{tenant}/oauth2/v2.0/token`) over httpx.

Every credential here follows azure-core's `AsyncTokenCredential` protocol
(`await get_token(*scopes) -> AccessToken`, `await close()`); the connector's token provider
(`connectors.graph.token`) reuses a token until 5 minutes before it expires, and so does
`ClientCredentialsCredential` for its own callers. Secrets never appear in messages or reprs.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError

from connectors.base import ConfigError, check_base_url, is_loopback
from connectors.graph.client import CURRENT_BREAKER, CURRENT_STATS

#: Refresh a cached token this many seconds before it expires.
REFRESH_MARGIN = 300.0
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"


class ClientCredentialsCredential:
    """OAuth 2.0 client-credentials grant against an Entra-compatible token endpoint.

    `root` is the authority root (`https://login.microsoftonline.com` or a loopback fake);
    the token URL is `{root}/{tenant_id}/oauth2/v2.0/token`. Safe to share across event
    loops (no client or lock outlives one call to `get_token`'s loop).
    """

    def __init__(self, root: str, tenant_id: str, client_id: str, client_secret: str, *,
                 timeout: float = 30.0) -> None:
        self._url = f"{check_base_url(root)}/{tenant_id}/oauth2/v2.0/token"
        self._client_id, self._secret, self._timeout = client_id, client_secret, timeout
        self._cached: dict[tuple[str, ...], AccessToken] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._pause = 0.0

    #: token requests per `get_token` before giving up; seconds of the longest wait between them
    ATTEMPTS = 3
    MAX_WAIT = 10.0

    def __repr__(self) -> str:
        return f"ClientCredentialsCredential(url={self._url!r}, client_id={self._client_id!r})"

    async def get_token(self, *scopes: str, claims: str | None = None, tenant_id: str | None = None,
                        enable_cae: bool = False, **kwargs: Any) -> AccessToken:
        key = tuple(scopes)
        tok = self._cached.get(key)
        if tok is not None and tok.expires_on - REFRESH_MARGIN > time.time() and not claims:
            return tok
        loop_id = id(asyncio.get_running_loop())
        lock = self._locks.get(loop_id)
        if lock is None:
            lock = self._locks[loop_id] = asyncio.Lock()
        async with lock:
            tok = self._cached.get(key)
            if tok is not None and tok.expires_on - REFRESH_MARGIN > time.time() and not claims:
                return tok
            tok = await self._request(scopes)
            self._cached[key] = tok
            return tok

    async def _request(self, scopes: tuple[str, ...]) -> AccessToken:
        """POST the grant; 429/5xx and garbled answers are retried (honouring `Retry-After`,
        at most `MAX_WAIT` s each) up to `ATTEMPTS` times, then raise `ServiceRequestError`;
        a refusal raises `ClientAuthenticationError` at once."""
        form = {"grant_type": "client_credentials", "client_id": self._client_id,
                "client_secret": self._secret, "scope": " ".join(scopes)}
        problem = "no answer"
        for attempt in range(self.ATTEMPTS):
            if attempt:
                await asyncio.sleep(self._pause)
            self._pause = min(self.MAX_WAIT, 0.5 * 2 ** attempt)
            stats, breaker = CURRENT_STATS.get(), CURRENT_BREAKER.get()
            if breaker is not None:
                breaker.before()
            if stats is not None:
                stats.api_calls += 1
            try:
                async with httpx.AsyncClient(timeout=self._timeout) as http:
                    resp = await http.post(self._url, data=form)
            except httpx.HTTPError as exc:
                problem = f"token endpoint unreachable ({type(exc).__name__})"
                if breaker is not None:
                    breaker.failure(problem)
                continue
            if breaker is not None:
                breaker.success()
            try:
                body = resp.json()
            except ValueError:
                body = None
            if resp.status_code == 429 or resp.status_code >= 500:
                if stats is not None and resp.status_code == 429:
                    stats.throttles += 1
                problem = f"token endpoint answered HTTP {resp.status_code}"
                try:
                    self._pause = min(self.MAX_WAIT, float(resp.headers.get("retry-after", "")))
                except ValueError:
                    pass
                continue
            if not isinstance(body, dict):
                problem = "token endpoint answered an unreadable body"
                continue
            if resp.status_code != 200 or "access_token" not in body:
                desc = str(body.get("error_description", "")).split(":")[0] or str(resp.status_code)
                raise ClientAuthenticationError(
                    message=f"token request refused: {body.get('error', 'error')} {desc}")
            return AccessToken(body["access_token"],
                               int(time.time()) + int(body.get("expires_in", 3600)))
        raise ServiceRequestError(problem)

    async def close(self) -> None:
        self._locks.clear()

    async def __aenter__(self) -> ClientCredentialsCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def build_credential(*, tenant_id: str, client_id: str, client_secret: str | None,
                     certificate_path: str | None, token_url: str | None) -> Any:
    """The async credential for these settings (raises `ConfigError` on a bad combination)."""
    if bool(client_secret) == bool(certificate_path):
        raise ConfigError("graph: give exactly one of client_secret or certificate_path "
                          "(or inject credential=)")
    root = check_base_url(token_url) if token_url else DEFAULT_AUTHORITY
    parts = urlsplit(root)
    if parts.scheme == "http":
        if certificate_path or not is_loopback(parts.hostname or ""):
            raise ConfigError("graph: plain-http token_url works only on loopback with a client secret")
        return ClientCredentialsCredential(root, tenant_id, client_id, client_secret or "")
    from azure.identity.aio import CertificateCredential, ClientSecretCredential

    try:
        if certificate_path:
            return CertificateCredential(tenant_id, client_id, certificate_path, authority=parts.netloc)
        return ClientSecretCredential(tenant_id, client_id, client_secret or "", authority=parts.netloc)
    except (OSError, ValueError) as exc:  # unreadable certificate, malformed tenant id
        raise ConfigError(f"graph: credential settings rejected ({type(exc).__name__})") from exc
