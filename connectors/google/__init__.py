"""Google Workspace connector over the Admin SDK Directory API (google-api-python-client).

Modules: `connector` (the `GoogleConnector` class, registered as kind ``"google"``), `client`
(credentials and per-thread SDK services with budgeted retries), `paging` (Google's JSON
cursor), `reader` (snapshot and login reads), `expand` (nested groups), `errors` (the one
error boundary).

The SDK loads on first use of `GoogleConnector`, not with this package, so `expand` imports
without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.google.connector import GoogleConnector

__all__ = ["GoogleConnector"]


def __getattr__(name: str) -> Any:
    if name == "GoogleConnector":
        from connectors.google.connector import GoogleConnector

        globals()[name] = GoogleConnector
        return GoogleConnector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
