"""SCIM tokens: create one for a push directory (shown once, with the Tenant URL), list every
token (admin ones too), revoke.

    GET  /tokens?directory=     the tokens, newest first; the creation form
    POST /tokens                form: csrf, directory, name?, expires_days? → the page with
                                **Tenant URL** (`[server] public_url` + `/scim/v2`) and
                                **Secret Token** shown this once (`Cache-Control: no-store`);
                                400 with a message for a pull or unknown directory
    POST /tokens/{id}/revoke    form: csrf → 303 to /tokens (idempotent)

Labels are Microsoft Entra's ("Tenant URL", "Secret Token"), with Okta's ("SCIM connector base
URL", "API Token") beside them. Only the token's hash is stored (`syncd.service.tokens`);
creation and revocation are audited by the service with the admin as `manual:<admin>`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from syncd.console.deps import Admin, daemon, require_admin
from syncd.console.render import page
from syncd.service import tokens
from syncd.service.errors import ServiceError
from syncd.store import session_scope
from syncd.store.models import ScimToken

router = APIRouter(dependencies=[Depends(require_admin)])

#: the longest expiry the form accepts, days
MAX_DAYS = 3650


def tenant_url(settings: Any) -> str:
    """The SCIM base URL an IdP is given: the public URL of the SCIM listener + `/scim/v2`."""
    return str(settings.server.public_url).rstrip("/") + "/scim/v2"


def _aware(ts: datetime | None) -> datetime | None:
    return ts if ts is None or ts.tzinfo else ts.replace(tzinfo=UTC)


def _row(t: ScimToken, now: datetime) -> dict[str, Any]:
    expires = _aware(t.expires_at)
    revoked = _aware(t.revoked_at)
    state = "revoked" if revoked else ("expired" if expires is not None and expires <= now else "live")
    return {
        "id": t.id,
        "kind": t.kind,
        "directory": t.directory,
        "name": t.name,
        "prefix": t.prefix,
        "created_at": _aware(t.created_at),
        "last_used_at": _aware(t.last_used_at),
        "expires_at": expires,
        "revoked_at": revoked,
        "state": state,
    }


def tokens_page(
    request: Request,
    *,
    status_code: int = 200,
    message: str | None = None,
    created: dict[str, Any] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    state = daemon(request)
    settings = state.settings()
    only = request.query_params.get("directory") or None
    now = datetime.now(UTC)
    with session_scope(state.engine, write=False) as s:
        rows = [_row(t, now) for t in tokens.list_tokens(s, directory=only)]
    rows.reverse()  # newest first
    push = [n for n, d in settings.directories.items() if d.kind == "scim"]
    response = page(
        request,
        "tokens.html",
        status_code=status_code,
        title="SCIM tokens",
        tokens=rows,
        push=push,
        pull=[n for n, d in settings.directories.items() if d.kind != "scim"],
        message=message,
        created=created,
        form=form or {"directory": only or (push[0] if push else ""), "name": "", "expires_days": ""},
        only=only,
    )
    if created is not None:
        response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/tokens", summary="SCIM and admin tokens")
def list_page(request: Request) -> Response:
    return tokens_page(request)


@router.post("/tokens", summary="Create a SCIM token for a push directory")
def create(
    request: Request,
    admin: Annotated[Admin, Depends(require_admin)],
    directory: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    expires_days: Annotated[str, Form()] = "",
) -> Response:
    state = daemon(request)
    settings = state.settings()
    form = {"directory": directory, "name": name, "expires_days": expires_days}
    d = settings.directories.get(directory)
    if d is None:
        return tokens_page(
            request,
            status_code=400,
            form=form,
            message=f"There is no directory named {directory!r}; "
            "a SCIM token is for a configured push directory.",
        )
    if d.kind != "scim":
        return tokens_page(
            request,
            status_code=400,
            form=form,
            message=f"{directory!r} is a pull directory (kind {d.kind}): syncd reads it from the IdP, "
            "so no IdP pushes to it and it takes no SCIM token. "
            'Add a directory with kind = "scim" for an IdP that pushes.',
        )
    expires: timedelta | None = None
    if expires_days.strip():
        try:
            days = int(expires_days)
        except ValueError:
            days = 0
        if not 1 <= days <= MAX_DAYS:
            return tokens_page(
                request,
                status_code=400,
                form=form,
                message=f"Expiry must be a whole number of days from 1 to {MAX_DAYS}, or empty for never.",
            )
        expires = timedelta(days=days)
    try:
        with session_scope(state.engine) as s:
            row, secret = tokens.create_token(
                s,
                directory=directory,
                kind="scim",
                name=name.strip(),
                expires_in=expires,
                created_by=admin.actor,
            )
            created = {**_row(row, datetime.now(UTC)), "secret": secret, "tenant_url": tenant_url(settings)}
    except ServiceError as exc:
        return tokens_page(request, status_code=400, form=form, message=f"The token was not created: {exc}")
    return tokens_page(request, created=created)


@router.post("/tokens/{token_id}/revoke", summary="Revoke a token")
def revoke(request: Request, token_id: str, admin: Annotated[Admin, Depends(require_admin)]) -> Response:
    state = daemon(request)
    try:
        with session_scope(state.engine) as s:
            tokens.revoke_token(s, token=token_id, revoked_by=admin.actor)
    except ServiceError as exc:
        return tokens_page(request, status_code=404, message=f"Nothing was revoked: {exc}")
    return RedirectResponse("/tokens", status_code=303)
