"""The [feed] and [webhooks.NAME] settings: the example documents and accepts them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from syncd.config import ConfigError, parse_config
from syncd.config.delivery import EVENT_KINDS, FeedSettings, WebhookSettings, secret_bytes
from syncd.feed.kinds import KINDS
from tests.webhooks.receiver import new_secret

ROOT = Path(__file__).resolve().parents[2]


def test_config_event_kinds_are_the_feed_kinds() -> None:
    assert EVENT_KINDS == KINDS


def test_the_example_documents_every_feed_and_webhook_key() -> None:
    text = (ROOT / "config.example.toml").read_text()
    keys = set(FeedSettings.model_fields) | set(WebhookSettings.model_fields)
    assert sorted(k for k in keys if not re.search(rf"(?m)^[# ]*{k} *=", text)) == []


def test_the_example_webhook_is_valid_uncommented(tmp_path: Path) -> None:
    text = (ROOT / "config.example.toml").read_text()
    block = text[text.index("# [webhooks.offboarding]") : text.index("# Directories:")]
    block = re.sub(r"(?m)^# (?=\[webhooks|[a-z_]+ = )", "", block)
    s = parse_config(f'state_dir = "{tmp_path}"\n' + block, environ={"SYNCD_WEBHOOK_SECRET": new_secret()})
    w = s.webhooks["offboarding"]
    assert w.events == ("user.deactivated", "user.deleted") and w.max_backoff == 300 and w.timeout == 10


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('url = "http://x"\n', "exactly one of secret, secret_env, secret_file"),
        ('url = "http://x"\nsecret = "abc"\nsecret_env = "X"\n', "environment variable X is not set"),
        ('url = "http://x"\nsecret = "whsec_!!"\n', "not a Standard Webhooks secret"),
        ('url = "http://x"\nsecret = "whsec_AAAA"\n', "too short"),
        ('url = "http://x"\nsecret = "S"\nevents = ["user.gone"]\n', "unknown event 'user.gone'"),
        ('url = "http://x"\nsecret = "S"\nevents = []\n', "events is empty"),
        ('url = "http://x"\nsecret = "S"\nmax_attempts = 0\n', "greater than or equal to 1"),
    ],
)
def test_bad_webhook_settings_are_named(body: str, problem: str) -> None:
    body = body.replace('"S"', f'"{new_secret()}"')
    with pytest.raises(ConfigError) as err:
        parse_config("[webhooks.w]\n" + body, environ={})
    assert problem in str(err.value)


def test_feed_retention_has_a_floor() -> None:
    with pytest.raises(ConfigError, match="at least 60s"):
        parse_config('[feed]\nretention = "10s"\n')


def test_an_unpadded_secret_is_accepted_as_the_library_does() -> None:
    s = new_secret().rstrip("=")
    assert len(secret_bytes(s)) == 32
