"""Webhook payloads (Standard Webhooks shape: `type`, `timestamp`, `data`) and message ids."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from syncd.feed import FeedChange

TEST_TYPE = "syncd.test"


def event_id(change: FeedChange) -> str:
    """The `webhook-id` of a change: the same on every attempt, unique per change."""
    return "chg_" + change.position.replace(".", "_")


def payload(change: FeedChange) -> dict[str, Any]:
    body = change.to_dict()
    return {"type": change.kind, "timestamp": body["at"], "data": body}


def test_event(webhook: str) -> tuple[str, dict[str, Any]]:
    """A signed-but-meaningless event for `syncd webhooks test`: (id, payload)."""
    now = datetime.now(UTC).isoformat()
    return (
        f"test_{uuid.uuid4().hex}",
        {"type": TEST_TYPE, "timestamp": now, "data": {"webhook": webhook, "message": "syncd test event"}},
    )
