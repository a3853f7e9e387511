"""Okta pull connector over the official `okta` SDK (see `connectors.okta.connector`).

Modules: `client` (SDK setup and the request path), `errors` (the one error boundary),
`paging` (Link-header paging), `reader` (JSON → snapshot values), `snapshot` (full and delta
reads), `connector` (the `Connector` implementation).

The SDK (seconds to import) loads on first use of `OktaConnector`, not with this package, so
`reader` and `paging` import without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.okta.connector import OktaConnector

__all__ = ["OktaConnector"]


def __getattr__(name: str) -> Any:
    if name == "OktaConnector":
        from connectors.base import register
        from connectors.okta.connector import OktaConnector

        globals()[name] = register(OktaConnector)
        return OktaConnector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
