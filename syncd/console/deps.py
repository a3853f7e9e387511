"""What a console page may rely on: the signed-in admin, the CSRF token, the daemon's state.

`syncd.console.auth` sets `request.state.admin` (an `Admin`) for a valid, unexpired session
before any page handler runs; pages depend on `require_admin` and never read cookies
themselves. Tests of a page alone override `require_admin` with
`app.dependency_overrides[require_admin] = lambda: Admin(...)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request


@dataclass(frozen=True)
class Admin:
    """A signed-in console admin.

    `subject` is the IdP's `sub` (or the admin token's id for break-glass); `via` is
    "oidc" or "token"; `directory` is the syncd directory whose on-login sync ran for them.
    """

    subject: str
    name: str
    email: str | None = None
    via: str = "oidc"
    directory: str | None = None

    @property
    def actor(self) -> str:
        """The audit actor string for this admin's console actions."""
        who = self.email or self.name or self.subject
        return f"console:{self.via}:{who}"


class SignInRequired(Exception):
    """Raised by `require_admin` when no admin is signed in; the console answers with a
    redirect to the sign-in page (HTML) or 401 (anything else)."""


def require_admin(request: Request) -> Admin:
    admin = getattr(request.state, "admin", None)
    if admin is None:
        raise SignInRequired()
    if not isinstance(admin, Admin):
        raise HTTPException(403, "not a console admin")
    return admin


def csrf_token(request: Request) -> str:
    """The session's CSRF token (set by `syncd.console.auth`); forms post it as `csrf`."""
    return str(getattr(request.state, "csrf", ""))


def daemon(request: Request) -> Any:
    """The daemon's `DaemonState` (engine, settings(), runner, scheduler, login, metrics)."""
    return request.app.state.daemon
