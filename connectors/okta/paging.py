"""Okta's cursor paging as small strategy objects (dlt-style), and the page iterator.

Okta pages every list with `Link` headers: `<…>; rel="self"` and, when more remain,
`<…?after=CURSOR&…>; rel="next"`. Real Okta sends them as two separate headers; a proxy may
fold them into one comma-separated value. `LinkHeaderPaginator` reads every value in either
form and follows the `next` URL as given (it keeps `limit`, `filter`, `search`, …).

Invariants: a paginator never follows a link outside the org (`OktaApi.check_link`), never
follows the same URL twice in a row (a server loop would otherwise spin forever), and — in
polling mode (System Log without `until`, where Okta always sends `next`) — stops on an empty
page.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from connectors.base import BadDataError
from connectors.budget import Deadline
from connectors.okta.client import OktaApi, Page

_LINK = re.compile(r'<([^>]*)>\s*;\s*rel\s*=\s*"?([A-Za-z]+)"?')


def parse_links(values: tuple[str, ...] | list[str]) -> dict[str, str]:
    """rel → URL over every `Link` header value (separate headers or comma-folded)."""
    out: dict[str, str] = {}
    for value in values:
        for url, rel in _LINK.findall(value):
            out.setdefault(rel.lower(), url)
    return out


class LinkHeaderPaginator:
    """Follows `rel="next"`; `stop_on_empty` for Okta's polling lists (System Log)."""

    def __init__(self, *, stop_on_empty: bool = False) -> None:
        self.stop_on_empty = stop_on_empty
        self.next_url: str | None = None
        self._last: str | None = None

    def init_request(self, url: str) -> str:
        self._last = url
        return url

    def update_state(self, page: Page, items: list[Any]) -> None:
        nxt = parse_links(page.links).get("next")
        if nxt is None or nxt == self._last or (self.stop_on_empty and not items):
            self.next_url = None
        else:
            self.next_url = nxt

    def has_next_page(self) -> bool:
        return self.next_url is not None

    def update_request(self) -> str:
        assert self.next_url is not None
        self._last = self.next_url
        return self.next_url


def parse_list(page: Page, what: str) -> list[Any]:
    """The JSON array of one list page (orjson); anything else is `BadDataError`."""
    try:
        items = orjson.loads(page.body)
    except orjson.JSONDecodeError as exc:
        raise BadDataError(f"{what}: the answer is not valid JSON") from exc
    if not isinstance(items, list):
        raise BadDataError(f"{what}: expected a JSON array")
    return items


async def iterate(api: OktaApi, url: str, *, what: str, deadline: Deadline,
                  window: bool = False, stop_on_empty: bool = False,
                  on_page: Callable[[Page], None] | None = None) -> AsyncIterator[list[Any]]:
    """Yield the items of each page of the list at `url`, following next links."""
    pager = LinkHeaderPaginator(stop_on_empty=stop_on_empty)
    current = pager.init_request(url)
    while True:
        page = await api.get(current, what=what, deadline=deadline, window=window)
        if on_page is not None:
            on_page(page)
        items = parse_list(page, what)
        pager.update_state(page, items)
        yield items
        if not pager.has_next_page():
            return
        current = api.check_link(pager.update_request())
