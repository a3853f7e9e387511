"""build_connector: settings → connector, and unreadable credential files as ConfigError."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from connectors.base import ConfigError
from connectors.factory import build_connector


@pytest.mark.parametrize("kind", ["okta", "google"])
def test_an_unreadable_key_file_is_a_config_error_naming_the_file(kind: str, tmp_path: Path) -> None:
    """The file existed when the config was checked; it may be unreadable when the daemon
    builds the connector (permissions, a credential not mounted): a clear ConfigError, never
    an OSError traceback."""
    gone = tmp_path / "key.pem"
    common = {"kind": kind, "concurrency": 2, "time_budget": 10}
    if kind == "okta":
        settings = SimpleNamespace(
            **common, org_url="https://acme.okta.com", api_token=None, client_id="c",
            private_key_file=gone, group_types=("OKTA_GROUP",),
        )  # fmt: skip
    else:
        settings = SimpleNamespace(
            **common, service_account_file=gone, subject="a@x", base_url=None, token_url=None,
            customer="my_customer", domain=None, customer_members="expand",
        )  # fmt: skip
    with pytest.raises(ConfigError, match=r"key\.pem"):
        build_connector("d", settings)


def test_a_keycloak_directory_builds_its_connector_from_the_validated_settings(tmp_path: Path) -> None:
    from connectors.keycloak import KeycloakConnector
    from syncd.config import parse_config

    text = (
        '[directories.kc]\nkind = "keycloak"\nserver_url = "https://sso.example.com/auth"\n'
        'realm = "acme"\nclient_id = "syncd"\nclient_secret_env = "KC"\ntoken_realm = "master"\n'
        'team_name = "path"\nconcurrency = 3\nmax_connection_failures = 7\n'
    )
    settings = parse_config(text, source=tmp_path / "c.toml", environ={"KC": "s3cret", "HOME": str(tmp_path)})
    conn = build_connector("kc", settings.directories["kc"])
    assert isinstance(conn, KeycloakConnector)
    assert (conn.server_url, conn.team_name, conn.concurrency, conn.max_connection_failures) == (
        "https://sso.example.com/auth",
        "path",
        3,
        7,
    )
    assert (conn.api.realm, conn.api.token_realm, conn.api.client_secret) == ("acme", "master", "s3cret")


def test_a_onelogin_directory_builds_its_connector_from_the_validated_settings(tmp_path: Path) -> None:
    from connectors.onelogin import OneLoginConnector
    from syncd.config import parse_config

    text = (
        '[directories.ol]\nkind = "onelogin"\nbase_url = "https://acme.onelogin.com/"\n'
        'client_id = "cid"\nclient_secret_env = "OL_SECRET"\nteams = "both"\n'
        "concurrency = 3\nmax_connection_failures = 7\n"
    )
    s = parse_config(text, source=tmp_path / "c.toml", environ={"HOME": str(tmp_path), "OL_SECRET": "s3"})
    conn = build_connector("ol", s.directories["ol"])
    assert isinstance(conn, OneLoginConnector)
    assert (conn.base_url, conn.teams, conn.concurrency, conn.max_connection_failures) == (
        "https://acme.onelogin.com", "both", 3, 7,
    )  # fmt: skip
    assert (conn.api.cfg.username, conn.api.cfg.password) == ("cid", "s3")
    conn.api.close()
