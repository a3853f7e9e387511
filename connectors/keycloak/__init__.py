"""Keycloak pull connector over the official `python-keycloak` SDK (see `connectors.keycloak.connector`).

Modules: `client` (SDK setup and the request path), `transport` (aiohttp under the SDK's
connection manager), `errors` (the one error boundary),
`reader` (JSON → snapshot values, nesting expansion; pure), `snapshot` (the full read),
`connector` (the `Connector` implementation).

The SDK loads on first use of `KeycloakConnector`, not with this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.keycloak.connector import KeycloakConnector

__all__ = ["KeycloakConnector"]


def __getattr__(name: str) -> Any:
    if name == "KeycloakConnector":
        from connectors.base import register
        from connectors.keycloak.connector import KeycloakConnector

        globals()[name] = register(KeycloakConnector)
        return KeycloakConnector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
