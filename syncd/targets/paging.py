"""How a target's lists are read: `startIndex`/`count` paging as a small strategy object.

Targets are trusted for nothing but the resources they return:
- `count` is at most 100 (LiteLLM-style gateways cap it there; larger asks are cut silently);
- `totalResults` may be wrong (it may count a filter the target ignored, or change under
  concurrent writes): the read ends on an empty page, or on a short page that also reaches the
  announced total exactly (a total below what was already read is a lie, not an end);
- a resource seen twice (newest-first order shifting under concurrent creates) is kept once;
- a target that ignores `startIndex` (the same page again) ends the read as incomplete.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from syncd.targets.errors import BadResponse

if TYPE_CHECKING:
    from syncd.targets.client import ScimClient

MAX_COUNT = 100


@dataclass
class IndexPaging:
    """State of one paged read: `init` → (`request` → `update`)* while `has_next`."""

    count: int = MAX_COUNT
    max_pages: int = 1_000_000
    start: int = 1
    pages_read: int = 0
    has_next: bool = True
    seen: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.count = max(1, min(self.count, MAX_COUNT))

    def request(self) -> dict[str, int]:
        return {"start": self.start, "count": self.count}

    def update(self, items: list[dict[str, Any]], total: int | None) -> list[dict[str, Any]]:
        """Advance past `items`; returns the ones not seen before."""
        self.pages_read += 1
        fresh = [r for r in items if r["id"] not in self.seen]
        if items and not fresh:
            raise BadResponse(
                f"the target answered startIndex={self.start} with resources already read: "
                "it does not page; the read is incomplete"
            )
        self.seen.update(r["id"] for r in fresh)
        end = self.start + len(items) - 1
        self.start += len(items)
        short = len(items) < self.count
        self.has_next = bool(items) and not (short and total is not None and end == total)
        if self.pages_read >= self.max_pages:
            raise BadResponse(f"more than {self.max_pages} pages: the read is incomplete")
        return fresh

    def pages(
        self, client: ScimClient, resource: str, *, filter: str | None = None, excluded: str | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        while self.has_next:
            items, total = client.list_page(resource, filter=filter, attributes=excluded, **self.request())
            fresh = self.update(items, total)
            if fresh:
                yield fresh
