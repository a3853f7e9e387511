"""Jinja2 filters of the console. Each returns plain `str` (never `Markup`), so autoescape
still applies to what it returns.

- `visible`: a stored name as one line with every control character, and every bidirectional
  embedding, override and isolate, shown as a visible escape (`\\u202e`), as the CLI does.
- `tricky`: whether `visible` would change the name (it holds such a character). Names are
  shown as stored, isolated (`unicode-bidi: isolate`), and a tricky one also as `visible`
  beside it, so it can neither reorder the text around it nor pass for another name.
- `when`: a timestamp as `YYYY-MM-DD HH:MM:SS UTC` (naive ones are UTC); "—" for None.
- `secs`: a duration in seconds as `0.42 s`, `3 m 05 s`, `2 h 01 m`.
- `ago`: seconds as a rough age (`40 s`, `3 min`, `2 h`, `5 d`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cli.output import safe


def visible(value: Any) -> str:
    return "" if value is None else safe(value)


def tricky(value: Any) -> bool:
    return value is not None and safe(value) != str(value)


def when(ts: datetime | None) -> str:
    if ts is None:
        return "—"
    ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def secs(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.2f} s"
    m, s = divmod(int(value), 60)
    if m < 60:
        return f"{m} m {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} m"


def ago(value: float | None) -> str:
    if value is None:
        return "—"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if value >= size:
            return f"{int(value // size)} {unit}"
    return f"{int(value)} s"


FILTERS = {"visible": visible, "tricky": tricky, "when": when, "secs": secs, "ago": ago}
