"""Auth0 pull connector over `auth0-python` (see `connectors.auth0.connector`).

Modules: `client` (SDK setup, the client-credentials token and the one request path),
`errors` (the one error boundary), `reader` (JSON → snapshot values), `snapshot` (the full
read: users by list or export job, roles and organizations with their members), `connector`
(the `Connector` implementation).

The SDK (httpx, pydantic models, requests) loads on first use of `Auth0Connector`, not with
this package, so `reader` imports without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.auth0.connector import Auth0Connector

__all__ = ["Auth0Connector"]


def __getattr__(name: str) -> Any:
    if name == "Auth0Connector":
        from connectors.auth0.connector import Auth0Connector
        from connectors.base import register

        globals()[name] = register(Auth0Connector)
        return Auth0Connector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
