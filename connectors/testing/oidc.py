"""A fake OpenID Connect provider on 127.0.0.1, written from OpenID Connect Core 1.0 and
Discovery 1.0, for tests, the browser suite and `syncd demo`.

Endpoints: `/.well-known/openid-configuration`, `/jwks`, `/authorize` (GET shows a tiny login
form: type a username; POST signs in and redirects with a code), `/token`, `/userinfo`.

It is strict where a real provider is: `redirect_uri` must be registered exactly (else no
redirect at all: an error page); `response_type=code`, scope `openid`, PKCE S256 are required;
clients authenticate with client_secret_basic or client_secret_post (not both, not neither);
a code is single-use, expires after `CODE_TTL_S`, and is bound to its client, redirect_uri
and code challenge; the ID token (RS256, `kid` in the header) carries iss, sub, aud, exp,
iat, auth_time, the request's nonce, email, name, preferred_username and the groups claim.
`events` records every token request's outcome for assertions. `faults` makes it issue a
broken ID token, to prove a client checks it: "wrong_nonce", "wrong_aud", "wrong_iss",
"expired", "foreign_key" (signed with a key not in its JWKS).
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

CODE_TTL_S = 60
TOKEN_TTL_S = 3600


@dataclass(frozen=True)
class OidcUser:
    username: str
    email: str
    name: str
    groups: tuple[str, ...] = ()
    sub: str = ""

    @property
    def subject(self) -> str:
        return self.sub or "sub-" + hashlib.sha256(self.username.encode()).hexdigest()[:16]


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    user: OidcUser
    scope: str
    expires: float
    used: bool = False


@dataclass
class FakeOidc:
    """The provider's state: its clients (id → secret), their redirect URIs and its users."""

    client_id: str = "syncd-console"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    redirect_uris: set[str] = field(default_factory=set)
    users: dict[str, OidcUser] = field(default_factory=dict)
    groups_claim: str = "groups"
    issuer: str = ""  # set by `app(issuer)` / `serve`
    events: list[str] = field(default_factory=list)
    faults: set[str] = field(default_factory=set)
    _codes: dict[str, _Code] = field(default_factory=dict)
    _access: dict[str, tuple[OidcUser, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    key: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(
            2048, parameters={"kid": secrets.token_hex(4), "use": "sig"}
        )
    )

    def add_user(self, username: str, *, email: str, name: str, groups: tuple[str, ...] = ()) -> OidcUser:
        user = OidcUser(username, email, name, tuple(groups))
        self.users[username] = user
        return user

    # -- the ASGI app ---------------------------------------------------------------------

    def app(self, issuer: str) -> Starlette:
        self.issuer = issuer.rstrip("/")
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self._discovery),
                Route("/jwks", self._jwks),
                Route("/authorize", self._authorize, methods=["GET", "POST"]),
                Route("/token", self._token, methods=["POST"]),
                Route("/userinfo", self._userinfo, methods=["GET", "POST"]),
            ]
        )

    async def _discovery(self, _r: Request) -> Response:
        i = self.issuer
        return JSONResponse(
            {
                "issuer": i,
                "authorization_endpoint": f"{i}/authorize",
                "token_endpoint": f"{i}/token",
                "userinfo_endpoint": f"{i}/userinfo",
                "jwks_uri": f"{i}/jwks",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile", "groups"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "code_challenge_methods_supported": ["S256"],
                "claims_supported": [
                    "sub",
                    "iss",
                    "aud",
                    "exp",
                    "iat",
                    "nonce",
                    "email",
                    "name",
                    self.groups_claim,
                ],
            }
        )

    async def _jwks(self, _r: Request) -> Response:
        public = self.key.as_dict(private=False)
        return JSONResponse({"keys": [{**public, "alg": "RS256", "use": "sig"}]})

    # -- authorization endpoint (Core 3.1.2) ----------------------------------------------

    async def _authorize(self, request: Request) -> Response:
        params = (
            dict(request.query_params)
            if request.method == "GET"
            else {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        )
        redirect_uri, client_id = params.get("redirect_uri", ""), params.get("client_id", "")
        if client_id != self.client_id:
            return _page("Unknown client", f"No client {client_id!r} is registered.", 400)
        if redirect_uri not in self.redirect_uris:
            return _page("Bad redirect_uri", f"{redirect_uri!r} is not registered for this client.", 400)
        state = params.get("state")

        def fail(error: str, desc: str) -> Response:
            q = {"error": error, "error_description": desc, **({"state": state} if state else {})}
            return RedirectResponse(f"{redirect_uri}?{urlencode(q)}", status_code=303)

        if params.get("response_type") != "code":
            return fail("unsupported_response_type", "only the code flow is supported")
        if "openid" not in params.get("scope", "").split():
            return fail("invalid_scope", "scope must include openid")
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return fail("invalid_request", "PKCE with S256 is required")
        if request.method == "GET":
            return _login_form(params)
        if params.get("action") == "deny":
            return fail("access_denied", "the user declined")
        user = self.users.get(params.get("username", "").strip())
        if user is None:
            return _login_form(params, error="No such user.")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Code(
                client_id,
                redirect_uri,
                params["code_challenge"],
                params.get("nonce"),
                user,
                params.get("scope", ""),
                time.time() + CODE_TTL_S,
            )
        q = {"code": code, **({"state": state} if state else {})}
        return RedirectResponse(f"{redirect_uri}?{urlencode(q)}", status_code=303)

    # -- token endpoint (Core 3.1.3) ------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        client = self._client_auth(request, form)
        if client is None:
            self.events.append("invalid_client")
            return _oauth_error("invalid_client", "client authentication failed", 401)
        if form.get("grant_type") != "authorization_code":
            return _oauth_error("unsupported_grant_type", "only authorization_code")
        with self._lock:
            grant = self._codes.get(form.get("code", ""))
            reused = grant is not None and grant.used
            if grant is not None:
                grant.used = True
        if grant is None or reused or grant.expires < time.time():
            self.events.append("code_reused" if reused else "invalid_code")
            return _oauth_error("invalid_grant", "the code is unknown, expired or already used")
        if grant.client_id != client or grant.redirect_uri != form.get("redirect_uri"):
            self.events.append("redirect_mismatch")
            return _oauth_error(
                "invalid_grant", "redirect_uri or client differs from the authorization request"
            )
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if not verifier or not secrets.compare_digest(digest, grant.challenge):
            self.events.append("pkce_failed")
            return _oauth_error("invalid_grant", "code_verifier does not match the code_challenge")
        now = int(time.time())
        user = grant.user
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": user.subject,
            "aud": client,
            "exp": now + 300,
            "iat": now,
            "auth_time": now,
            **self._profile(user),
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        key = self._faulty(claims)
        id_token = jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, key)
        access = secrets.token_urlsafe(24)
        with self._lock:
            self._access[access] = (user, time.time() + TOKEN_TTL_S)
        self.events.append("issued")
        return JSONResponse(
            {"access_token": access, "token_type": "Bearer", "expires_in": TOKEN_TTL_S, "id_token": id_token},
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    def _faulty(self, claims: dict[str, Any]) -> RSAKey:
        """Apply `faults` to the claims; the key to sign with."""
        if "wrong_nonce" in self.faults:
            claims["nonce"] = "not-the-nonce"
        if "wrong_aud" in self.faults:
            claims["aud"] = "another-client"
        if "wrong_iss" in self.faults:
            claims["iss"] = self.issuer + "/other"
        if "expired" in self.faults:
            claims["exp"] = claims["iat"] - 600
        if "foreign_key" in self.faults:
            return RSAKey.generate_key(2048, parameters={"kid": self.key.kid})
        return self.key

    def _client_auth(self, request: Request, form: dict[str, str]) -> str | None:
        header = request.headers.get("authorization", "")
        posted = "client_secret" in form
        if header.lower().startswith("basic "):
            if posted:
                return None  # RFC 6749 2.3: one method per request
            try:
                raw = base64.b64decode(header[6:].strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                return None
            from urllib.parse import unquote_plus

            cid, _, secret = raw.partition(":")
            cid, secret = unquote_plus(cid), unquote_plus(secret)
        elif posted:
            cid, secret = form.get("client_id", ""), form["client_secret"]
        else:
            return None
        if cid != self.client_id or not secrets.compare_digest(secret, self.client_secret):
            return None
        return cid

    # -- userinfo (Core 5.3) --------------------------------------------------------------

    async def _userinfo(self, request: Request) -> Response:
        scheme, _, access = request.headers.get("authorization", "").partition(" ")
        with self._lock:
            hit = self._access.get(access.strip()) if scheme.lower() == "bearer" else None
        if hit is None or hit[1] < time.time():
            return Response(status_code=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        user = hit[0]
        return JSONResponse({"sub": user.subject, **self._profile(user)})

    def _profile(self, user: OidcUser) -> dict[str, Any]:
        return {
            "email": user.email,
            "email_verified": True,
            "name": user.name,
            "preferred_username": user.username,
            self.groups_claim: list(user.groups),
        }


def _login_form(params: dict[str, str], error: str | None = None) -> Response:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in params.items()
        if k not in ("username", "action")
    )
    err = f'<p class="error">{html.escape(error)}</p>' if error else ""
    body = (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Fake IdP sign-in</title></head>"
        "<body><h1>Fake identity provider</h1>"
        f'{err}<form method="post" action="/authorize">{hidden}'
        '<label for="username">Username</label> <input id="username" name="username" autofocus required> '
        '<button type="submit" name="action" value="login">Sign in</button></form></body></html>'
    )
    return HTMLResponse(body, status_code=400 if error else 200)


def _page(title: str, text: str, status: int) -> Response:
    return HTMLResponse(
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>",
        status_code=status,
    )


def _oauth_error(error: str, desc: str, status: int = 400) -> Response:
    headers = {"WWW-Authenticate": "Basic"} if status == 401 else None
    return JSONResponse({"error": error, "error_description": desc}, status_code=status, headers=headers)


def serve_oidc(fake: FakeOidc, *, port: int | None = None) -> Any:
    """Start `fake` under uvicorn on 127.0.0.1 (a started `ServerThread`; `.stop()` ends it)."""
    from connectors.testing.server import ServerThread, free_port

    port = port or free_port()
    return ServerThread(fake.app(f"http://127.0.0.1:{port}"), port=port).start()
