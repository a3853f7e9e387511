"""[targets.NAME]: validation and documentation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from syncd.config import ConfigError, parse_config
from syncd.config.models import ScimTarget

ROOT = Path(__file__).resolve().parents[2]
BASE = (
    '[directories.entra]\nkind = "scim"\n\n[targets.gw]\nkind = "scim"\nurl = "https://gw.example/scim/v2"\n'
)


def test_every_target_key_is_documented_in_the_example() -> None:
    text = (ROOT / "config.example.toml").read_text()
    section = text[text.index("[targets.gateway]") :]
    missing = [k for k in ScimTarget.model_fields if not re.search(rf"(?m)^#\s*#?\s*{k} *=|\.{k}\]", section)]
    assert missing == []
    assert "targets" in text


def test_defaults_and_token_from_env() -> None:
    s = parse_config(BASE + 'token_env = "GW_TOKEN"\n', environ={"GW_TOKEN": "sk-1"})
    t = s.targets["gw"]
    assert t.secret.reveal() == "sk-1" and "sk-1" not in repr(t)
    assert (t.users, t.on_user_left, t.on_team_left, t.team_name) == (
        "members",
        "deactivate",
        "delete",
        "{name}",
    )
    assert t.full_reconcile.interval == 86400 and t.sources is None


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ("", "give exactly one of token, token_env, token_file"),
        ('token = "x"\nsources = ["nope"]\n', "no directory named nope"),
        ('token = "x"\nteam_name = "{team}"\n', "may use only {name} and {directory}"),
        ('token = "x"\nusers = "some"\n', "users"),
        ('token = "x"\non_user_left = "keep"\n', "on_user_left"),
        ('token = "x"\nfull_reconcile = "sometimes"\n', "full_reconcile"),
        ('token = "x"\nconcurrency = 0\n', "concurrency"),
        ('token = "x"\n[targets.gw.safety]\nmax_removals = -1\n', "max_removals"),
        ('token = "x"\nurl2 = "x"\n', "url2"),
    ],
)
def test_bad_target_settings_are_named(extra: str, problem: str) -> None:
    with pytest.raises(ConfigError) as got:
        parse_config(BASE + extra)
    assert problem in str(got.value)


def test_the_example_target_is_valid_when_uncommented() -> None:
    text = (ROOT / "config.example.toml").read_text()
    section = text[text.index("# [targets.gateway]") :]
    body = re.sub(r"(?m)^#\s*(?=\[targets|[a-z_]+ = )", "", section)
    s = parse_config(
        '[directories.entra-contoso]\nkind = "scim"\n[directories.google-corp]\nkind = "scim"\n' + body,
        environ={"SYNCD_GATEWAY_TOKEN": "sk-x"},
    )
    t = s.targets["gateway"]
    assert t.sources == ("entra-contoso", "google-corp") and t.safety.max_removals == 500
