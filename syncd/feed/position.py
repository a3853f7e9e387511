"""Feed positions: (xid, id) pairs, ordered, written as opaque strings such as "0.42".

`xid` is the writing transaction's id on PostgreSQL and 0 on SQLite. A position means
"every change at or before it has been read"; `START` is before every change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FORMAT = re.compile(r"(\d{1,20})\.(\d{1,20})")


class BadPosition(ValueError):
    """A position string this feed never issued."""


@dataclass(frozen=True, order=True, slots=True)
class Position:
    xid: int
    id: int

    def __str__(self) -> str:
        return f"{self.xid}.{self.id}"

    @classmethod
    def parse(cls, text: str | None) -> Position:
        """`text` as a Position; None or "" is START. BadPosition if it is not one."""
        if not text:
            return START
        m = _FORMAT.fullmatch(text.strip())
        if m is None:
            raise BadPosition(f"{text!r} is not a feed position (use the `next` of a previous answer)")
        return cls(int(m.group(1)), int(m.group(2)))


START = Position(0, 0)
