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
