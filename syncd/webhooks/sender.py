"""Signs and POSTs one webhook message; the only module of the package that does network I/O.

Every transport failure (connect, timeout, protocol) and every non-2xx answer becomes an
`Outcome` with `ok=False` and a one-line error; nothing raises. Error texts never carry the
URL's query string or the secret.
"""

from __future__ import annotations

import email.utils
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

USER_AGENT = "syncd-webhooks/1"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds the receiver asked us to wait


class Sender:
    def __init__(
        self, url: str, secret: str, *, timeout: float = 10.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.url = url
        self._signer = Webhook(secret)
        self._client = httpx.Client(
            timeout=timeout, transport=transport, follow_redirects=False, headers={"user-agent": USER_AGENT}
        )

    def close(self) -> None:
        self._client.close()

    def headers(self, msg_id: str, body: str, at: datetime | None = None) -> dict[str, str]:
        ts = at or datetime.now(UTC)
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(ts.timestamp())),
            "webhook-signature": self._signer.sign(msg_id, ts, body),
            "content-type": "application/json",
        }

    def send(self, msg_id: str, payload: dict[str, Any]) -> Outcome:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        try:
            r = self._client.post(self.url, content=body.encode(), headers=self.headers(msg_id, body))
        except httpx.TimeoutException:
            return Outcome(False, None, "timed out")
        except httpx.HTTPError as exc:
            return Outcome(False, None, f"{type(exc).__name__}: {_clean(str(exc), self.url)}")
        if 200 <= r.status_code < 300:
            return Outcome(True, r.status_code)
        text = " ".join(r.text.split())[:200]
        return Outcome(
            False, r.status_code, f"HTTP {r.status_code}" + (f": {text}" if text else ""), _retry_after(r)
        )


def _clean(msg: str, url: str) -> str:
    base = url.split("?", 1)[0]
    return " ".join(msg.replace(url, base).split())[:300]


def _retry_after(r: httpx.Response) -> float | None:
    raw = r.headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def backoff(attempt: int, *, base: float, cap: float, retry_after: float | None = None) -> float:
    """Seconds before retry number `attempt` (1 after the first failure): base·2^(attempt-1),
    at most `cap`; a receiver's Retry-After wins when longer, still at most `cap`."""
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    if retry_after is not None:
        delay = max(delay, min(cap, retry_after))
    return delay
