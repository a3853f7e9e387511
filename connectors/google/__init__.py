"""Google Workspace connector over the Admin SDK Directory API (google-api-python-client).

Modules: `connector` (the `GoogleConnector` class, registered as kind ``"google"``), `client`
(credentials and per-thread SDK services with budgeted retries), `paging` (Google's JSON
cursor), `reader` (snapshot and login reads), `expand` (nested groups), `errors` (the one
error boundary).
"""

from connectors.google.connector import GoogleConnector

__all__ = ["GoogleConnector"]
