"""Okta pull connector over the official `okta` SDK (see `connectors.okta.connector`).

Modules: `client` (SDK setup and the request path), `errors` (the one error boundary),
`paging` (Link-header paging), `reader` (JSON → snapshot values), `snapshot` (full and delta
reads), `connector` (the `Connector` implementation).
"""

from connectors.base import register
from connectors.okta.connector import OktaConnector

register(OktaConnector)

__all__ = ["OktaConnector"]
