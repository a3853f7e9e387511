"""Paging as a strategy object (dlt-style): Google's JSON cursor.

Google's list methods answer ``{"<items>": [...], "nextPageToken": "..."}`` and take the token
back as the ``pageToken`` query parameter; the last page has no ``nextPageToken``. Tokens are
opaque and bound to the query they came from, so the other parameters must stay the same.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from connectors.google.client import current
from connectors.google.errors import expect_dict, translate


@dataclass
class JsonCursorPaginator:
    """State of one paged read: `init_request`, then `update_state` / `update_request`."""

    cursor_field: str = "nextPageToken"
    cursor_param: str = "pageToken"
    cursor: str | None = None
    has_next_page: bool = True
    pages: int = field(default=0)

    def init_request(self, params: dict[str, Any]) -> dict[str, Any]:
        self.cursor, self.has_next_page, self.pages = None, True, 0
        return {k: v for k, v in params.items() if k != self.cursor_param}

    def update_state(self, page: dict[str, Any]) -> None:
        self.pages += 1
        token = page.get(self.cursor_field)
        self.cursor = token if isinstance(token, str) and token else None
        self.has_next_page = self.cursor is not None

    def update_request(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**params, self.cursor_param: self.cursor}


def iter_pages(call: Callable[..., Any], params: dict[str, Any], what: str,
               num_retries: int) -> Iterator[dict[str, Any]]:
    """Every page of ``call(**params)`` (an SDK list method), in order, as dicts.

    Runs in one worker thread; each page is one ``execute(num_retries=...)`` (the SDK's retry
    loop) and counts as one page of the current `CallContext`. Errors leave through
    `translate` as connector errors naming `what` and the page.
    """
    pager = JsonCursorPaginator()
    params = pager.init_request(params)
    while pager.has_next_page:
        label = f"{what} page {pager.pages + 1}"
        with translate(label):
            page = expect_dict(call(**params).execute(num_retries=num_retries), label)
        current().count(pages=1)
        pager.update_state(page)
        yield page
        params = pager.update_request(params)


async def apages(run: Callable[[Callable[[Any], dict[str, Any]]], Awaitable[dict[str, Any]]],
                 method: Callable[[Any], Callable[..., Any]], params: dict[str, Any],
                 what: str, num_retries: int) -> AsyncIterator[dict[str, Any]]:
    """Every page of a list method, each fetched as its own job through `run`.

    `run(job)` runs ``job(service)`` in a worker thread (`ServicePool.run` bound to a context);
    `method(directory)` picks the SDK list method (``lambda d: d.users.list``). Pages may come
    from different threads: each request is built from the service of the thread sending it.
    """
    pager = JsonCursorPaginator()
    params = pager.init_request(params)
    while pager.has_next_page:
        label = f"{what} page {pager.pages + 1}"

        def job(svc: Any, params: dict[str, Any] = params, label: str = label) -> dict[str, Any]:
            with translate(label):
                page = expect_dict(method(svc)(**params).execute(num_retries=num_retries), label)
            current().count(pages=1)
            return page

        page = await run(job)
        pager.update_state(page)
        yield page
        params = pager.update_request(params)
