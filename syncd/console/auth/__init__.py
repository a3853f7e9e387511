"""Console sign-in: OpenID Connect (`oidc`), break-glass admin tokens, signed-cookie sessions
with CSRF and timeouts (`session`), the session key (`keys`), the sign-in routes (`routes`)
and the audit of sign-ins (`audit`)."""

from syncd.console.auth.audit import record_console_event
from syncd.console.auth.routes import login_summary, router

__all__ = ["login_summary", "record_console_event", "router"]
