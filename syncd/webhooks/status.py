"""What `syncd webhooks` and the metrics show: per webhook its cursor, lag, counts, last
error and dead letters, read from the store (so any replica's deliveries count)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from syncd import feed
from syncd.config.delivery import WebhookSettings
from syncd.store.models import FeedCursor, WebhookDeadLetter
from syncd.webhooks.worker import consumer


@dataclass(frozen=True)
class WebhookStatus:
    name: str
    url: str
    events: tuple[str, ...]
    position: str | None
    lag_changes: int
    lag_seconds: float | None
    delivered: int
    attempts: int
    last_success_at: datetime | None
    last_error: str | None
    dead_letters: int

    def to_dict(self) -> dict[str, Any]:
        out = dict(vars(self))
        out["events"] = list(self.events)
        out["last_success_at"] = self.last_success_at.isoformat() if self.last_success_at else None
        return out


def statuses(session: Session, webhooks: dict[str, WebhookSettings]) -> list[WebhookStatus]:
    q = select(WebhookDeadLetter.webhook, func.count()).group_by(WebhookDeadLetter.webhook)
    dead: dict[str, int] = {w: n for w, n in session.execute(q).all()}
    out = []
    for name, w in webhooks.items():
        row = session.get(FeedCursor, consumer(name))
        dirs = frozenset(w.directories) if w.directories is not None else None
        lag = feed.lag(session, after=row.position, directories=dirs) if row else feed.Lag(0, None)
        out.append(
            WebhookStatus(
                name=name,
                url=w.url.split("?", 1)[0],
                events=w.events,
                position=row.position if row else None,
                lag_changes=lag.changes,
                lag_seconds=round(lag.seconds, 1) if lag.seconds is not None else None,
                delivered=row.delivered if row else 0,
                attempts=row.attempts if row else 0,
                last_success_at=row.last_success_at if row else None,
                last_error=row.last_error if row else None,
                dead_letters=dead.get(name, 0),
            )
        )
    return out


def dead_letters(session: Session, webhook: str, *, limit: int = 50) -> list[WebhookDeadLetter]:
    q = (
        select(WebhookDeadLetter)
        .where(WebhookDeadLetter.webhook == webhook)
        .order_by(WebhookDeadLetter.id.desc())  # type: ignore[union-attr]
        .limit(limit)
    )
    return list(session.execute(q).scalars())
