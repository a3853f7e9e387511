"""Offset paging for console lists: `?page=N` (1-based), a fixed page size, links that keep
the other query parameters.

Invariant: a page number below 1 or not a number reads as 1; a page past the end is empty
(and says so), never an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import Request

#: rows per page of every console list
PAGE_SIZE = 50


def page_number(raw: str | None) -> int:
    """The 1-based page a `?page=` value asks for (1 for anything unreadable)."""
    try:
        n = int(raw or 1)
    except ValueError:
        return 1
    return max(1, min(n, 10_000_000))


@dataclass(frozen=True)
class Pager:
    """Where a page of `total` rows starts and the links to its neighbours."""

    number: int
    total: int
    size: int
    prev_url: str | None
    next_url: str | None

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


def pager(request: Request, total: int, *, param: str = "page", size: int | None = None) -> Pager:
    """The pager of `request` over `total` rows; `param` names its query parameter (a page
    with two lists pages each by its own parameter)."""
    size = size or PAGE_SIZE
    number = page_number(request.query_params.get(param))

    def link(n: int) -> str:
        query = [(k, v) for k, v in request.query_params.multi_items() if k != param]
        query.append((param, str(n)))
        return f"{request.url.path}?{urlencode(query)}"

    last = max(1, -(-total // size))
    return Pager(
        number=number,
        total=total,
        size=size,
        prev_url=link(min(number - 1, last)) if number > 1 else None,
        next_url=link(number + 1) if number < last else None,
    )
