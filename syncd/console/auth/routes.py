"""Sign-in and sign-out routes of the console.

    GET  /signin           the sign-in page: "Sign in with SSO" (when [console.oidc] is set) and
                           the admin-token form (when [console] break_glass is on)
    GET  /signin/oidc      redirect to the provider (state, nonce, PKCE S256)
    GET  /signin/callback  the provider's redirect back: verify, check admin, sign in, then the
                           on-login sync of the admin's own user in [console] directory
    POST /signin/token     break-glass: sign in with an admin token (form field `token`)
    POST /signout          end the session
    GET  /account          who is signed in, how, and when the session ends

Sign-ins (accepted and refused) and sign-outs are audited (`console.signin`,
`console.signin.refused`, `console.signout`). `next` is followed only to a path of the console.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from syncd.console.auth.audit import record_console_event
from syncd.console.auth.oidc import OidcError, Pending, is_admin
from syncd.console.auth.session import SessionBox
from syncd.console.deps import Admin, require_admin
from syncd.console.render import page
from syncd.daemon.login import LoginError
from syncd.service import tokens
from syncd.store import session_scope

log = logging.getLogger("syncd.console.auth")
router = APIRouter(tags=["Console sign-in"])

PENDING_COOKIE = "syncd_oidc"
PENDING_MAX_AGE = 600
#: Messages of the sign-in page, by the `error` query value (nothing else is shown).
MESSAGES = {
    "expired": "Your session expired. Sign in again.",
    "signed_out": "You are signed out.",
    "retry": "The sign-in took too long or was started in another browser. Try again.",
    "denied": "The identity provider did not sign you in.",
}


def _state(request: Request) -> Any:
    return request.app.state.daemon


def _box(request: Request) -> SessionBox:
    return request.state.session  # type: ignore[no-any-return]


def safe_next(value: str | None) -> str:
    """A console path to go to after sign-in; anything else (another site) is "/"."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or _state(request).settings().console_url.startswith("https://")


def _signin_page(
    request: Request, *, status: int = 200, error: str | None = None, next_path: str = "/"
) -> Response:
    s = _state(request).settings()
    return page(
        request,
        "signin.html",
        status_code=status,
        title="Sign in",
        oidc=s.console.oidc is not None,
        break_glass=s.console.break_glass,
        error=error,
        next=next_path,
    )


@router.get("/signin")
def signin(request: Request, next: str | None = None, reason: str | None = None) -> Response:
    target = safe_next(next)
    if getattr(request.state, "admin", None) is not None:
        return RedirectResponse(target, status_code=303)
    return _signin_page(request, error=MESSAGES.get(reason or ""), next_path=target)


@router.get("/signin/oidc")
async def signin_oidc(request: Request, next: str | None = None) -> Response:
    s = _state(request).settings()
    cfg = s.console.oidc
    if cfg is None:
        return _signin_page(request, status=404, error="SSO sign-in is not configured ([console.oidc]).")
    base = s.console_url
    here = f"{request.url.scheme}://{request.url.netloc}"
    if here != base and not request.headers.get("x-forwarded-host"):
        # the callback comes back to the public URL: start there, so the cookie is where it lands
        query = urlencode({"next": safe_next(next)})
        return RedirectResponse(f"{base}/signin/oidc?{query}", status_code=303)
    try:
        url, pending = await request.app.state.oidc.start(
            cfg, redirect_uri=f"{base}/signin/callback", next_path=safe_next(next)
        )
    except OidcError as exc:
        log.warning("oidc sign-in cannot start", extra={"error": str(exc)})
        return _signin_page(request, status=502, error=f"SSO sign-in is unavailable: {exc}")
    r = RedirectResponse(url, status_code=303)
    r.set_cookie(
        PENDING_COOKIE,
        request.app.state.pending_codec.dumps(pending.to_dict()),
        max_age=PENDING_MAX_AGE,
        path="/signin",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    return r


@router.get("/signin/callback")
async def signin_callback(
    request: Request,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
) -> Response:
    daemon = _state(request)
    s = daemon.settings()
    cfg = s.console.oidc
    if cfg is None:
        return _signin_page(request, status=404, error="SSO sign-in is not configured ([console.oidc]).")
    raw = request.cookies.get(PENDING_COOKIE)
    data = request.app.state.pending_codec.loads(raw, max_age=PENDING_MAX_AGE) if raw else None
    try:
        pending = Pending(**data) if data else None
    except TypeError:
        pending = None
    if pending is None or not state or state != pending.state:
        return _done(_signin_page(request, status=400, error=MESSAGES["retry"]))
    if error or not code:
        return _done(_signin_page(request, status=401, error=MESSAGES["denied"], next_path=pending.next))
    try:
        claims = await request.app.state.oidc.finish(cfg, pending, code)
    except OidcError as exc:
        log.warning("oidc sign-in failed", extra={"error": str(exc)})
        return _done(_signin_page(request, status=401, error=f"Sign-in failed: {exc}"))
    name = _text(claims.get("name")) or _text(claims.get("preferred_username")) or claims["sub"]
    email = _text(claims.get("email"))
    admin = Admin(
        subject=str(claims["sub"]), name=name, email=email, via="oidc", directory=s.console.directory
    )
    engine = daemon.engine
    if not is_admin(claims, cfg):
        await run_in_threadpool(
            record_console_event,
            engine,
            actor=admin.actor,
            action="console.signin.refused",
            subject=admin.subject,
            after={"via": "oidc", "name": name, "reason": "not in an admin group or claim"},
        )
        r = page(
            request,
            "error.html",
            status_code=403,
            title="Not an admin",
            heading="Not a syncd admin",
            message=(
                f"You signed in as {email or name}, but your account is not in a group or claim "
                "that [console.oidc] names as a syncd admin. Ask an admin to add you."
            ),
        )
        return _done(r)
    box = _box(request)
    box.sign_in(admin)
    sync = await _login_sync(request, admin, claims, cfg.user_claim)
    await run_in_threadpool(
        record_console_event,
        engine,
        actor=admin.actor,
        action="console.signin",
        subject=admin.subject,
        after={"via": "oidc", "name": name, "email": email, "login_sync": sync},
    )
    return _done(RedirectResponse(pending.next, status_code=303))


def _done(response: Response) -> Response:
    response.delete_cookie(PENDING_COOKIE, path="/signin")
    return response


def _text(v: Any) -> str | None:
    return v if isinstance(v, str) and v.strip() else None


async def _login_sync(
    request: Request, admin: Admin, claims: dict[str, Any], user_claim: str
) -> dict[str, Any] | None:
    """Run the on-login sync of the admin's own directory user; flash what changed."""
    box = _box(request)
    directory = admin.directory
    if directory is None:
        return None
    key = _text(claims.get(user_claim)) or admin.email
    if key is None:
        box.flash("warn", f"No on-login sync: your sign-in carries no {user_claim!r} claim.")
        return {"directory": directory, "error": f"no {user_claim} claim"}
    try:
        result = await run_in_threadpool(_state(request).login.sync, directory, key)
    except LoginError as exc:
        box.flash("bad", f"On-login sync of {key} in {directory} failed: {exc}")
        return {"directory": directory, "user": key, "error": str(exc)}
    box.flash(*login_summary(result))
    return {
        "directory": directory,
        "user": key,
        "result": result.result,
        "added": [t["display_name"] for t in result.added],
        "removed": [t["display_name"] for t in result.removed],
        "created_teams": [t["display_name"] for t in result.created_teams],
    }


def login_summary(result: Any) -> tuple[str, str]:
    """(kind, text) of an on-login sync result, in words."""
    who = f"{result.user_key} in {result.directory}"
    if result.stale:
        return (
            "warn",
            f"On-login sync of {who}: the IdP did not answer ({result.error}); your teams are as stored.",
        )
    if not result.found:
        return "warn", f"On-login sync of {who}: the IdP does not know this user."

    def names(rows: list[dict[str, Any]]) -> str:
        return ", ".join(str(t.get("display_name")) for t in rows)

    parts = []
    if result.added:
        parts.append(f"added to {names(result.added)}")
    if result.removed:
        parts.append(f"removed from {names(result.removed)}")
    if result.created_teams:
        parts.append(f"created team(s) {names(result.created_teams)}")
    if not parts:
        return "ok", f"On-login sync of {who}: no change ({len(result.teams)} team(s))."
    return "ok", f"On-login sync of {who}: " + "; ".join(parts) + "."


@router.post("/signin/token")
async def signin_token(request: Request, token: str = Form(""), next: str = Form("/")) -> Response:
    daemon = _state(request)
    if not daemon.settings().console.break_glass:
        return page(
            request,
            "error.html",
            status_code=403,
            title="Refused",
            heading="Break-glass sign-in is off",
            message="Sign-in with an admin token is turned off ([console] break_glass = false).",
        )
    row = await run_in_threadpool(_admin_token, daemon.engine, token.strip())
    if row is None:
        log.warning("break-glass sign-in refused: not a live admin token")
        return _signin_page(
            request, status=401, error="That is not a live admin token.", next_path=safe_next(next)
        )
    token_id, token_name = row
    admin = Admin(subject=token_id, name=token_name or f"admin token {token_id[:8]}", via="token")
    _box(request).sign_in(admin)
    await run_in_threadpool(
        record_console_event,
        daemon.engine,
        actor=admin.actor,
        action="console.signin",
        subject=admin.subject,
        after={"via": "token", "name": admin.name},
    )
    return RedirectResponse(safe_next(next), status_code=303)


def _admin_token(engine: Any, secret: str) -> tuple[str, str] | None:
    with session_scope(engine) as s:
        row = tokens.authenticate(s, secret, kind="admin")
        return (row.id, row.name) if row is not None else None


def token_live(engine: Any, token_id: str) -> bool:
    """Whether the admin token of a break-glass session is still live."""
    from syncd.store.models import ScimToken, utcnow

    with session_scope(engine, write=False) as s:
        row = s.get(ScimToken, token_id)
        if row is None or row.kind != "admin" or row.revoked_at is not None:
            return False
        if row.expires_at is None:
            return True
        exp = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=utcnow().tzinfo)
        return exp > utcnow()


@router.post("/signout")
async def signout(request: Request) -> Response:
    admin = getattr(request.state, "admin", None)
    _box(request).sign_out()
    if admin is not None:
        await run_in_threadpool(
            record_console_event,
            _state(request).engine,
            actor=admin.actor,
            action="console.signout",
            subject=admin.subject,
        )
    return RedirectResponse("/signin?reason=signed_out", status_code=303)


@router.get("/account")
def account(request: Request, admin: Admin = Depends(require_admin)) -> Response:
    from datetime import UTC, datetime

    c = _state(request).settings().console
    data = _box(request).data

    def at(ts: float) -> str:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    return page(
        request,
        "account.html",
        title="Your session",
        signed_in_at=at(float(data["t0"])),
        ends_at=at(float(data["t0"]) + c.max_age),
        idle_minutes=round(c.idle_timeout / 60, 1),
        actor=admin.actor,
    )
