"""OpenID Connect sign-in (Core 1.0, authorization code flow) against `[console.oidc]`.

The provider is found by discovery (`ISSUER/.well-known/openid-configuration`, whose
`issuer` must equal the configured one exactly). A sign-in carries a fresh `state`, `nonce`
and PKCE S256 verifier (RFC 7636), kept by the caller in a signed cookie between the redirect
and the callback. The code is exchanged with client_secret_basic (client_secret_post when the
provider supports only that), and the ID token is verified as Core 3.1.3.7 asks: signature
against the provider's JWKS (asymmetric algorithms only, keys re-read once on an unknown
`kid`), `iss`, `aud` (and `azp` when several audiences), `exp`/`iat` with 60 s leeway, and
`nonce`. Claims the ID token lacks (groups, email) are read from the UserInfo endpoint, whose
`sub` must match. Errors are `OidcError` with a message fit for the sign-in page.

authlib supplies the OAuth pieces (tokens, the S256 challenge); JOSE is joserfc (authlib's
successor to `authlib.jose`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from syncd.config.models import OidcSettings

#: ID token algorithms accepted (never "none" nor a shared-secret HMAC).
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
#: Seconds discovery documents and key sets are kept.
CACHE_S = 3600.0
LEEWAY_S = 60


class OidcError(Exception):
    """The sign-in failed; the message says why in words an admin can act on."""


@dataclass(frozen=True)
class Pending:
    """What the callback needs from the redirect (kept in a signed cookie)."""

    state: str
    nonce: str
    verifier: str
    redirect_uri: str
    next: str

    def to_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


class OidcClient:
    """Discovery and key caches per issuer; safe to share across requests."""

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._keys: dict[str, tuple[float, KeySet]] = {}
        self._lock = asyncio.Lock()
        self._transport = transport

    def _http(self, cfg: OidcSettings) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=float(cfg.timeout), transport=self._transport, follow_redirects=False
        )

    async def metadata(self, cfg: OidcSettings) -> dict[str, Any]:
        hit = self._cache.get(cfg.issuer)
        if hit and time.monotonic() - hit[0] < CACHE_S:
            return hit[1]
        url = cfg.issuer.rstrip("/") + "/.well-known/openid-configuration"
        data = await self._get_json(cfg, url, what="the provider's discovery document")
        if data.get("issuer") != cfg.issuer:
            raise OidcError(
                f"the discovery document at {url} names issuer {data.get('issuer')!r}, not {cfg.issuer!r}: "
                "set [console.oidc] issuer to the provider's issuer exactly"
            )
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(data.get(key), str):
                raise OidcError(f"the discovery document at {url} has no {key}")
        self._cache[cfg.issuer] = (time.monotonic(), data)
        return data

    async def start(self, cfg: OidcSettings, *, redirect_uri: str, next_path: str) -> tuple[str, Pending]:
        """The provider's authorization URL to redirect to, and what the callback must check."""
        meta = await self.metadata(cfg)
        pending = Pending(generate_token(32), generate_token(32), generate_token(64), redirect_uri, next_path)
        query = {
            "response_type": "code",
            "client_id": cfg.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(cfg.scopes),
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": create_s256_code_challenge(pending.verifier),
            "code_challenge_method": "S256",
        }
        endpoint = meta["authorization_endpoint"]
        return endpoint + ("&" if "?" in endpoint else "?") + urlencode(query), pending

    async def finish(self, cfg: OidcSettings, pending: Pending, code: str) -> dict[str, Any]:
        """Exchange `code`, verify the ID token; its claims (merged with UserInfo's)."""
        meta = await self.metadata(cfg)
        token = await self._exchange(cfg, meta, pending, code)
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("the provider's token answer has no id_token (is the scope 'openid' allowed?)")
        claims = await self._verify(cfg, meta, id_token, pending.nonce)
        access = token.get("access_token")
        wanted = {cfg.admin_claim, *cfg.admin_values, cfg.user_claim, "email", "name"}
        if isinstance(access, str) and meta.get("userinfo_endpoint") and not wanted <= claims.keys():
            info = await self._userinfo(cfg, meta["userinfo_endpoint"], access)
            if info.get("sub") != claims["sub"]:
                raise OidcError("the provider's UserInfo answer is for another subject")
            claims = {**info, **claims}
        return claims

    async def _exchange(
        self, cfg: OidcSettings, meta: dict[str, Any], p: Pending, code: str
    ) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": p.redirect_uri,
            "code_verifier": p.verifier,
        }
        secret = cfg.secret.reveal()
        methods = meta.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        auth: httpx.Auth | None = None
        if "client_secret_basic" in methods:
            auth = httpx.BasicAuth(_form_encode(cfg.client_id), _form_encode(secret))
        elif "client_secret_post" in methods:
            form |= {"client_id": cfg.client_id, "client_secret": secret}
        else:
            raise OidcError(
                f"the provider supports neither client_secret_basic nor client_secret_post ({methods})"
            )
        try:
            async with self._http(cfg) as http:
                r = await http.post(
                    meta["token_endpoint"], data=form, auth=auth, headers={"Accept": "application/json"}
                )
        except httpx.HTTPError as exc:
            raise OidcError(f"the provider's token endpoint did not answer: {type(exc).__name__}") from None
        body = _json(r)
        if r.status_code != 200:
            err = body.get("error", f"HTTP {r.status_code}")
            desc = body.get("error_description")
            raise OidcError(f"the provider refused the code: {err}" + (f" ({desc})" if desc else ""))
        return body

    async def _verify(
        self, cfg: OidcSettings, meta: dict[str, Any], id_token: str, nonce: str
    ) -> dict[str, Any]:
        keys = await self._key_set(cfg, meta, refresh=False)
        try:
            try:
                tok = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
            except (JoseError, ValueError):  # perhaps a rotated key: read the key set again, once
                tok = jwt.decode(
                    id_token, await self._key_set(cfg, meta, refresh=True), algorithms=ALGORITHMS
                )
            claims = dict(tok.claims)
            JWTClaimsRegistry(
                leeway=LEEWAY_S,
                iss={"essential": True, "value": cfg.issuer},
                aud={"essential": True, "value": cfg.client_id},
                sub={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(claims)
        except (JoseError, ValueError) as exc:
            raise OidcError(f"the ID token is not valid: {exc}") from None
        aud = claims.get("aud")
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != cfg.client_id:
            raise OidcError("the ID token is for several audiences and its azp is not this client")
        return claims

    async def _key_set(self, cfg: OidcSettings, meta: dict[str, Any], *, refresh: bool) -> KeySet:
        url = meta["jwks_uri"]
        hit = self._keys.get(url)
        if hit and not refresh and time.monotonic() - hit[0] < CACHE_S:
            return hit[1]
        data = await self._get_json(cfg, url, what="the provider's signing keys (jwks_uri)")
        try:
            keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise OidcError(f"the provider's key set at {url} cannot be read: {exc}") from None
        self._keys[url] = (time.monotonic(), keys)
        return keys

    async def _userinfo(self, cfg: OidcSettings, url: str, access: str) -> dict[str, Any]:
        try:
            async with self._http(cfg) as http:
                r = await http.get(
                    url, headers={"Authorization": f"Bearer {access}", "Accept": "application/json"}
                )
        except httpx.HTTPError as exc:
            raise OidcError(
                f"the provider's UserInfo endpoint did not answer: {type(exc).__name__}"
            ) from None
        if r.status_code != 200:
            raise OidcError(f"the provider's UserInfo endpoint answered HTTP {r.status_code}")
        return _json(r)

    async def _get_json(self, cfg: OidcSettings, url: str, *, what: str) -> dict[str, Any]:
        try:
            async with self._http(cfg) as http:
                r = await http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise OidcError(f"cannot read {what} at {url}: {type(exc).__name__}") from None
        if r.status_code != 200:
            raise OidcError(f"cannot read {what} at {url}: HTTP {r.status_code}")
        data = _json(r)
        if not data:
            raise OidcError(f"{what} at {url} is not a JSON object")
        return data


def _json(r: httpx.Response) -> dict[str, Any]:
    try:
        data = r.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _form_encode(value: str) -> str:
    """client_secret_basic encodes id and secret as form values first (RFC 6749 2.3.1)."""
    from urllib.parse import quote_plus

    return quote_plus(value)


def is_admin(claims: dict[str, Any], cfg: OidcSettings) -> bool:
    """True when a configured group or claim value is among the user's claims."""

    def values(name: str) -> set[str]:
        v = claims.get(name)
        if isinstance(v, str):
            return {v}
        return {x for x in v if isinstance(x, str)} if isinstance(v, list) else set()

    if set(cfg.admin_groups) & values(cfg.admin_claim):
        return True
    return any(set(allowed) & values(name) for name, allowed in cfg.admin_values.items())
