"""Settings of the change feed (`[feed]`) and of webhooks (`[webhooks.NAME]`).

Durations are seconds (written "30d", "1h", "10s" or an integer). A webhook secret is a
Standard Webhooks secret: "whsec_" followed by base64 (the prefix may be left out), given as
`secret`, `secret_env` or `secret_file`, exactly one of them.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, model_validator

from syncd.config.types import Duration, EnvSecret, FileSecret, Secret, Text, Url

#: The change kinds a webhook may subscribe to (syncd.feed.kinds.KINDS; kept here so config
#: loading imports nothing of the store).
EVENT_KINDS = (
    "user.created",
    "user.updated",
    "user.deactivated",
    "user.reactivated",
    "user.deleted",
    "team.created",
    "team.renamed",
    "team.updated",
    "team.archived",
    "team.unarchived",
    "team.deleted",
    "team.members_added",
    "team.members_removed",
)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FeedSettings(_Model):
    """`retention`: changes older than this are pruned (readers behind it must resync);
    `prune_every`: how often the daemon prunes."""

    retention: Duration = 30 * 86400
    prune_every: Duration = 3600

    @model_validator(mode="after")
    def _positive(self) -> FeedSettings:
        if self.retention < 60:
            raise ValueError("retention must be at least 60s")
        if self.prune_every < 1:
            raise ValueError("prune_every must be at least 1s")
        return self


def _event(v: str) -> str:
    if v != "*" and v not in EVENT_KINDS:
        raise ValueError(f'unknown event {v!r}; one of: {", ".join(EVENT_KINDS)} (or "*")')
    return v


def secret_bytes(secret: str) -> bytes:
    """The key of a Standard Webhooks secret ("whsec_" + base64); ValueError if it is not one."""
    raw = secret.strip().removeprefix("whsec_")
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            "is not a Standard Webhooks secret: expected 'whsec_' followed by base64 "
            "(make one with: syncd webhooks secret)"
        ) from None
    if len(key) < 24:
        raise ValueError(f"is too short: {len(key)} bytes of key, at least 24 needed")
    return key


class WebhookSettings(_Model):
    """One receiver. `events`: the change kinds it gets ("*": all); `directories`: only those
    directories' changes (default: all). A change is retried `max_attempts` times, waiting
    `backoff` seconds doubled at each failure up to `max_backoff`, then dead-lettered."""

    url: Url
    secret: Secret | None = None
    secret_env: EnvSecret | None = None
    secret_file: FileSecret | None = None
    events: tuple[Annotated[str, AfterValidator(_event)], ...] = ("*",)
    directories: tuple[Text, ...] | None = None
    max_attempts: StrictInt = Field(default=8, ge=1, le=100)
    backoff: Duration = 1
    max_backoff: Duration = 300
    timeout: Duration = 10

    @model_validator(mode="after")
    def _check(self) -> WebhookSettings:
        given = [s for s in (self.secret, self.secret_env, self.secret_file) if s is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of secret, secret_env, secret_file")
        secret_bytes(given[0].reveal())
        if self.timeout < 1:
            raise ValueError("timeout must be at least 1s")
        if not self.events:
            raise ValueError('events is empty: list kinds, or ["*"] for all')
        return self

    @property
    def signing_secret(self) -> Secret:
        return next(s for s in (self.secret, self.secret_env, self.secret_file) if s is not None)

    def wants(self, kind: str, directory: str | None) -> bool:
        if "*" not in self.events and kind not in self.events:
            return False
        return self.directories is None or directory in self.directories
