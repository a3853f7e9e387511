"""Console sessions in a signed cookie, and the CSRF check of every unsafe request.

The cookie `syncd_session` holds `{"sid", "csrf", "t0", "seen", "admin"?, "flash"?}` signed
with the console's key (itsdangerous, salted); it is `HttpOnly`, `SameSite=Lax`, and `Secure`
when the request came over HTTPS or the console's public URL is https. Invariants:

- an admin session ends `idle_timeout` seconds after its last request and `max_age` seconds
  after sign-in, whichever comes first; a signed-out session id is refused until its
  `max_age` has passed (kept in this process's memory: a restart forgets it, the idle timeout
  still applies);
- a break-glass session lives only while its admin token is live and `break_glass` is on;
- signing in or out issues a new session id and CSRF token (no fixation);
- every request other than GET/HEAD/OPTIONS must carry the session's CSRF token (header
  `X-CSRF-Token` or form field `csrf`), else it is refused with a 403 page before any handler.

`request.state.admin` (an `Admin`, only for a valid admin session), `request.state.csrf`,
`request.state.session` (a `SessionBox`), `request.state.flash` (messages for this page) and
`request.state.expired` (an admin session just timed out) are set before any handler runs.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import anyio
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from syncd.config import Settings
from syncd.console.deps import Admin

COOKIE = "syncd_session"
SALT = "syncd.console.session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The most a console form body may hold (bytes).
MAX_FORM_BYTES = 1 << 20
#: Response headers on every console answer. No inline script may run (names are hostile
#: input); pages load their JS from /static.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


class SessionCodec:
    """Signs and reads session cookies with the console's key."""

    def __init__(self, key: str) -> None:
        self._s = URLSafeTimedSerializer(key, salt=SALT)

    def dumps(self, data: dict[str, Any]) -> str:
        return self._s.dumps(data)

    def loads(self, raw: str, max_age: int) -> dict[str, Any] | None:
        try:
            data = self._s.loads(raw, max_age=max_age)
        except (BadSignature, ValueError):
            return None
        return data if isinstance(data, dict) else None


def new_session(now: float) -> dict[str, Any]:
    return {"sid": secrets.token_urlsafe(16), "csrf": secrets.token_urlsafe(24), "t0": now, "seen": now}


class SessionBox:
    """The request's session; sign-in and sign-out routes change it through these methods."""

    def __init__(self, data: dict[str, Any], *, dirty: bool, now: float) -> None:
        self.data, self.dirty, self.now = data, dirty, now
        self.ended_sid: str | None = None

    @property
    def admin(self) -> Admin | None:
        raw = self.data.get("admin")
        return Admin(**raw) if isinstance(raw, dict) else None

    def sign_in(self, admin: Admin) -> None:
        self.data = {**new_session(self.now), "admin": asdict(admin), "flash": self.data.get("flash", [])}
        self.dirty = True

    def sign_out(self) -> None:
        self.ended_sid = self.data.get("sid")
        self.data = new_session(self.now)
        self.dirty = True

    def flash(self, kind: str, text: str) -> None:
        """A message (`kind` ok|warn|bad) shown once, on the next page."""
        self.data = {**self.data, "flash": [*self.data.get("flash", []), [kind, text]]}
        self.dirty = True


class SignedOut:
    """Session ids signed out in this process, each forgotten once it would have expired."""

    def __init__(self) -> None:
        self._ids: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, sid: str, until: float) -> None:
        with self._lock:
            now = time.time()
            self._ids = {k: v for k, v in self._ids.items() if v > now}
            self._ids[sid] = until

    def __contains__(self, sid: object) -> bool:
        with self._lock:
            return isinstance(sid, str) and self._ids.get(sid, 0.0) > time.time()


class ConsoleSessions:
    """ASGI middleware of the console app: session, CSRF, security headers (see module doc).

    `token_live(token_id) -> bool` tells whether a break-glass session's admin token still
    works; `refuse(request, status, title, message)` renders the error page."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Callable[[], Settings],
        codec: SessionCodec,
        token_live: Callable[[str], bool],
        refuse: Callable[..., Any],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app, self.settings, self.codec = app, settings, codec
        self.token_live, self.refuse, self.clock = token_live, refuse, clock
        self.signed_out = SignedOut()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        s = self.settings()
        now = self.clock()
        request = Request(scope)
        box, expired = await self._load(request.cookies.get(COOKIE), s, now)
        state = scope.setdefault("state", {})
        state["session"], state["expired"] = box, expired
        state["csrf"] = box.data["csrf"]
        admin = box.admin
        if admin is not None:
            state["admin"] = admin
        if _wants_page(scope) and box.data.get("flash"):
            state["flash"] = box.data["flash"]
            box.data = {k: v for k, v in box.data.items() if k != "flash"}
            box.dirty = True
        secure = scope.get("scheme") == "https" or s.console_url.startswith("https://")

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for k, v in SECURITY_HEADERS.items():
                    if k not in headers:
                        headers[k] = v
                if box.ended_sid:
                    self.signed_out.add(box.ended_sid, now + s.console.max_age)
                if box.dirty:
                    headers.append(
                        "set-cookie", self._cookie(box.data, secure=secure, max_age=s.console.max_age)
                    )
            await send(message)

        if scope["method"] not in SAFE_METHODS:
            body = await _read_body(receive)
            if body is None:
                await self.refuse(request, 413, "Too large", "The form is larger than the console accepts.")(
                    scope, receive, send_with_cookie
                )
                return
            replay = _replay(body)
            if not await _csrf_ok(scope, replay, box.data["csrf"]):
                page = self.refuse(
                    request,
                    403,
                    "Refused",
                    "The form's security token is missing or stale (CSRF check). "
                    "Reload the page and try again.",
                )
                await page(scope, _replay(b""), send_with_cookie)
                return
            receive = _replay(body)
        await self.app(scope, receive, send_with_cookie)

    async def _load(self, raw: str | None, s: Settings, now: float) -> tuple[SessionBox, bool]:
        c = s.console
        data = self.codec.loads(raw, max_age=c.max_age) if raw else None
        if data is None or not isinstance(data.get("sid"), str) or not isinstance(data.get("csrf"), str):
            return SessionBox(new_session(now), dirty=True, now=now), False
        admin = data.get("admin")
        if admin is not None:
            t0, seen = float(data.get("t0", 0)), float(data.get("seen", 0))
            over = now - seen > c.idle_timeout or now - t0 > c.max_age or data["sid"] in self.signed_out
            if not over and isinstance(admin, dict) and admin.get("via") == "token":
                over = not c.break_glass or not await anyio.to_thread.run_sync(
                    self.token_live, str(admin.get("subject"))
                )
            if over:
                return SessionBox(new_session(now), dirty=True, now=now), True
        box = SessionBox(data, dirty=False, now=now)
        if admin is not None and now - float(data.get("seen", 0)) >= min(60.0, c.idle_timeout / 4):
            box.data = {**data, "seen": now}  # sliding idle timeout, re-signed at most once a minute
            box.dirty = True
        return box, False

    def _cookie(self, data: dict[str, Any], *, secure: bool, max_age: int) -> str:
        parts = [
            f"{COOKIE}={self.codec.dumps(data)}",
            "Path=/",
            "HttpOnly",
            "SameSite=Lax",
            f"Max-Age={max_age}",
        ]
        if secure:
            parts.append("Secure")
        return "; ".join(parts)


def _wants_page(scope: Scope) -> bool:
    if scope["method"] != "GET" or scope.get("path", "").startswith("/static/"):
        return False
    accept = dict(scope.get("headers", ())).get(b"accept", b"")
    return b"text/html" in accept


async def _read_body(receive: Receive) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _csrf_ok(scope: Scope, receive: Receive, expected: str) -> bool:
    given = dict(scope.get("headers", ())).get(b"x-csrf-token", b"").decode("latin-1")
    if not given:
        ctype = dict(scope.get("headers", ())).get(b"content-type", b"")
        if ctype.startswith((b"application/x-www-form-urlencoded", b"multipart/form-data")):
            try:
                form = await Request(scope, receive).form()
            except Exception:  # a malformed body carries no token
                return False
            value = form.get("csrf")
            given = value if isinstance(value, str) else ""
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())
