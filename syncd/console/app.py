"""The console app, mounted at the admin listener's root.

It serves `/static`, the sign-in routes (`syncd.console.auth`) and the router of every page
module listed in `pages.PAGES` that exists. `ConsoleSessions` wraps it all: session, CSRF and
security headers run before any handler. Errors are pages, never tracebacks:
`SignInRequired` becomes a 303 to `/signin?next=PATH` (HTML requests) or a 401 (others); an
unknown path a plain 404 page; any other HTTP error a page with its status.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, RedirectResponse, Response

from syncd.console import auth
from syncd.console.auth.keys import session_key
from syncd.console.auth.oidc import OidcClient
from syncd.console.auth.routes import token_live
from syncd.console.auth.session import ConsoleSessions, SessionCodec
from syncd.console.deps import SignInRequired
from syncd.console.pages import PAGES
from syncd.console.render import page

log = logging.getLogger("syncd.console")
STATIC = Path(__file__).parent / "static"
_TITLES = {400: "Bad request", 403: "Refused", 404: "Not found", 405: "Not allowed", 409: "Conflict"}


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def error_page(request: Request, status: int, heading: str, message: str) -> Response:
    """The console's error page (HTML), or `{"detail": message}` for a non-HTML client."""
    if not _wants_html(request):
        return JSONResponse({"detail": message}, status_code=status)
    return page(request, "error.html", status_code=status, title=heading, heading=heading, message=message)


def _page_modules() -> list[Any]:
    found = []
    for name in PAGES:
        module = f"syncd.console.pages.{name}"
        try:
            found.append(importlib.import_module(module))
        except ModuleNotFoundError as exc:
            if exc.name != module:  # the page exists but something it imports does not
                raise
            log.debug("console page not built", extra={"page": name})
    return found


def build_console(state: Any, *, oidc: OidcClient | None = None) -> FastAPI:
    """The console for `state` (the daemon's `DaemonState`); its session key is read now."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.daemon = state
    key = session_key(state.settings())
    app.state.oidc = oidc or OidcClient()
    app.state.pending_codec = SessionCodec(key + ":oidc")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(auth.router)
    for module in _page_modules():
        app.include_router(module.router)

    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, _exc: SignInRequired) -> Response:
        if _wants_html(request):
            query = {"next": request.url.path + (f"?{request.url.query}" if request.url.query else "")}
            if getattr(request.state, "expired", False):
                query["reason"] = "expired"
            from urllib.parse import urlencode

            return RedirectResponse(f"/signin?{urlencode(query)}", status_code=303)
        return JSONResponse({"detail": "sign in to the console first"}, status_code=401)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return error_page(request, 404, "Not found", f"There is no page at {request.url.path}.")
        heading = _TITLES.get(exc.status_code, "Error")
        return error_page(request, exc.status_code, heading, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def bad_form(request: Request, exc: RequestValidationError) -> Response:
        fields = ", ".join(sorted({".".join(str(x) for x in e.get("loc", ())[1:]) for e in exc.errors()}))
        return error_page(request, 400, "Bad request", f"The request is missing or has bad values: {fields}.")

    def refuse(request: Request, status: int, heading: str, message: str) -> Response:
        return error_page(request, status, heading, message)

    app.add_middleware(
        ConsoleSessions,
        settings=state.settings,
        codec=SessionCodec(key),
        token_live=lambda token_id: token_live(state.engine, token_id),
        refuse=refuse,
    )
    return app
