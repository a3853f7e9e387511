"""OneLogin pull connector over the official `onelogin` SDK (API v2; see `connectors.onelogin.connector`).

Modules: `client` (SDK setup, token, the one request path), `errors` (the one error boundary),
`reader` (JSON → snapshot values, status codes, cursor headers), `snapshot` (the full read),
`connector` (the `Connector` implementation).

The SDK (pydantic models, urllib3) loads on first use of `OneLoginConnector`, not with this
package, so `reader` imports without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.onelogin.connector import OneLoginConnector

__all__ = ["OneLoginConnector"]


def __getattr__(name: str) -> Any:
    if name == "OneLoginConnector":
        from connectors.base import register
        from connectors.onelogin.connector import OneLoginConnector

        globals()[name] = register(OneLoginConnector)
        return OneLoginConnector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
