"""The console's Jinja2 environment and `page()`.

Autoescape is on for every template; stored names are never marked safe. Templates get
`admin`, `csrf`, `nav` and `flash` (one-time messages: the sign-in's on-login sync) besides
their own context; a form includes
`<input type="hidden" name="csrf" value="{{ csrf }}">`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from syncd.console.deps import csrf_token
from syncd.console.filters import FILTERS

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TEMPLATES.env.autoescape = True
TEMPLATES.env.filters.update(FILTERS)

#: (path, label) of the navigation bar, in order.
NAV: tuple[tuple[str, str], ...] = (
    ("/", "Overview"),
    ("/runs", "Runs"),
    ("/teams", "Teams"),
    ("/users", "Users"),
    ("/audit", "Audit"),
    ("/tokens", "SCIM tokens"),
)


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render `template` with the admin, the CSRF token and the navigation bar."""
    context.setdefault("title", "syncd")
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "admin": getattr(request.state, "admin", None),
            "csrf": csrf_token(request),
            "nav": NAV,
            "flash": getattr(request.state, "flash", None) or (),
            **context,
        },
        status_code=status_code,
    )
