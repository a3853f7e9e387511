"""What every connector's request layer measures a read by: its time budget and its call counts."""

from __future__ import annotations

import time
from dataclasses import dataclass


class Deadline:
    """A point in monotonic time; `remaining()` in seconds, never negative."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())


@dataclass
class Meter:
    """HTTP calls sent (retries and token requests included) and 429 answers received."""

    api_calls: int = 0
    throttles: int = 0
