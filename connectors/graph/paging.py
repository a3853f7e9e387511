"""Graph paging as small strategy objects (the dlt REST-client shape).

A paginator is given each page as it arrives (`update_state`), says whether another page
follows (`has_next_page`) and builds the request for it (`next_request`) with `url_request`,
the way msgraph-core's `PageIterator` builds its next-page requests: a GET
`RequestInformation` carrying the absolute URL and no URL template. Every page is still sent
by the SDK's request adapter (auth, middleware). A template-less request also spares the
adapter its per-send work on the template (it decodes the template into each tracing span's
name, twice per request, ~0.05 ms of CPU for a collection's long template).

- `NextLinkPaginator`: collections; follow the absolute `@odata.nextLink` until absent.
- `DeltaPaginator`: delta rounds; follow `@odata.nextLink` until a page carries
  `@odata.deltaLink`, which it keeps (the saved state for the next round).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation

from connectors.base import BadDataError
from connectors.graph.client import GraphApi

#: Builds the request for an absolute Graph URL.
WithUrl = Callable[[str], RequestInformation]


def url_request(url: str) -> RequestInformation:
    """A GET of the absolute Graph URL `url` that accepts JSON (no URL template)."""
    info = RequestInformation(Method.GET)
    info.url = url
    info.headers.try_add("Accept", "application/json")
    return info


class NextLinkPaginator:
    """Follows `@odata.nextLink`; a page without one is the last."""

    def __init__(self, with_url: WithUrl = url_request) -> None:
        self._with_url = with_url
        self.next_link: str | None = None
        self.pages = 0

    def update_state(self, page: dict[str, Any]) -> None:
        self.pages += 1
        link = page.get("@odata.nextLink")
        if link is not None and not isinstance(link, str):
            raise BadDataError("@odata.nextLink is not a string")
        self.next_link = link

    def has_next_page(self) -> bool:
        return self.next_link is not None

    def next_request(self) -> RequestInformation:
        assert self.next_link is not None
        return self._with_url(self.next_link)


class DeltaPaginator(NextLinkPaginator):
    """Follows a delta round to its end and keeps the final `@odata.deltaLink`."""

    def __init__(self, with_url: WithUrl = url_request) -> None:
        super().__init__(with_url)
        self.delta_link: str | None = None

    def update_state(self, page: dict[str, Any]) -> None:
        super().update_state(page)
        link = page.get("@odata.deltaLink")
        if link is not None:
            if not isinstance(link, str):
                raise BadDataError("@odata.deltaLink is not a string")
            self.delta_link = link
        if self.next_link is None and self.delta_link is None:
            raise BadDataError("delta page has neither @odata.nextLink nor @odata.deltaLink")


def page_value(page: dict[str, Any], what: str) -> list[dict[str, Any]]:
    """The `value` list of a collection page (BadDataError if it has none)."""
    value = page.get("value")
    if not isinstance(value, list):
        raise BadDataError(f"{what}: page without a 'value' list")
    return value


async def iter_pages(api: GraphApi, first: RequestInformation, paginator: NextLinkPaginator, *,
                     what: str, deadline: float) -> AsyncIterator[list[dict[str, Any]]]:
    """Yield the `value` list of each page, first request first; errors propagate as raised
    by `GraphApi.get_json` (the caller decides whether a failed page is fatal)."""
    info = first
    while True:
        page = await api.get_json(info, what=what, deadline=deadline)
        value = page_value(page, what)
        paginator.update_state(page)
        yield value
        if not paginator.has_next_page():
            return
        info = paginator.next_request()
