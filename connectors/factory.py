"""Build a directory's connector from its validated settings (the one place config meets SDKs)."""

from __future__ import annotations

import json
from typing import Any

from connectors.base import ConfigError, Connector


def build_connector(name: str, settings: Any, **overrides: Any) -> Connector:
    """The connector for pull directory `name`; `overrides` win over settings (tests, demo)."""
    kind = getattr(settings, "kind", None)
    common: dict[str, Any] = {"concurrency": settings.concurrency, "time_budget": float(settings.time_budget)}
    common["max_connection_failures"] = getattr(settings, "max_connection_failures", 5)
    if kind == "graph":
        from connectors.graph import GraphConnector

        secret = settings.secret.reveal() if settings.secret else None
        kw = {
            "tenant_id": settings.tenant_id,
            "client_id": settings.client_id,
            "client_secret": secret,
            "certificate_path": str(settings.certificate_path) if settings.certificate_path else None,
            "base_url": settings.base_url,
            "token_url": settings.token_url,
            "group_source": settings.group_source,
            "service_principal_id": settings.service_principal_id,
            "batch_size": getattr(settings, "batch_size", 20),
        }
        return GraphConnector(name, **{**common, **kw, **overrides})
    if kind == "okta":
        from connectors.okta import OktaConnector

        key = None
        if settings.private_key_file:
            try:
                key = settings.private_key_file.read_text()
            except OSError as exc:
                path = settings.private_key_file
                raise ConfigError(f"cannot read private key file {path}: {exc.strerror}") from None
        kw = {
            "base_url": settings.org_url,
            "token": settings.api_token.reveal() if settings.api_token else None,
            "client_id": settings.client_id,
            "private_key": key,
            "group_types": settings.group_types,
        }
        return OktaConnector(name, **{**common, **kw, **overrides})
    if kind == "google":
        from connectors.google import GoogleConnector

        try:
            info = json.loads(settings.service_account_file.read_text())
        except (OSError, ValueError) as exc:
            path = settings.service_account_file
            raise ConfigError(f"cannot read service account file {path}: {exc}") from None
        kw = {
            "admin_email": settings.subject,
            "service_account_info": info,
            "base_url": settings.base_url,
            "token_url": settings.token_url,
            "customer": settings.customer,
            "domain": settings.domain,
            "customer_members": settings.customer_members,
        }
        return GoogleConnector(name, **{**common, **kw, **overrides})
    if kind == "auth0":
        from connectors.auth0 import Auth0Connector

        kw = {
            "domain": settings.domain,
            "client_id": settings.client_id,
            "client_secret": settings.secret.reveal() if settings.secret else None,
            "audience": settings.audience,
            "base_url": settings.base_url,
            "teams": settings.teams,
            "users_source": settings.users_source,
        }
        return Auth0Connector(name, **{**common, **kw, **overrides})
    if kind == "keycloak":
        from connectors.keycloak import KeycloakConnector

        kw = {
            "server_url": settings.server_url,
            "realm": settings.realm,
            "client_id": settings.client_id,
            "client_secret": settings.secret.reveal(),
            "token_realm": settings.token_realm,
            "team_name": settings.team_name,
        }
        return KeycloakConnector(name, **{**common, **kw, **overrides})
    if kind == "onelogin":
        from connectors.onelogin import OneLoginConnector

        secret = settings.secret
        kw = {
            "base_url": settings.base_url,
            "client_id": settings.client_id,
            "client_secret": secret.reveal() if secret else None,
            "teams": settings.teams,
        }
        return OneLoginConnector(name, **{**common, **kw, **overrides})
    raise ConfigError(f"directory {name!r} is of kind {kind!r}, which has no pull connector")
