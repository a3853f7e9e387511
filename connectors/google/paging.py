"""Paging as a strategy object (dlt-style): Google's JSON cursor.

Google's list methods answer ``{"<items>": [...], "nextPageToken": "..."}`` and take the token
back as the ``pageToken`` query parameter; the last page has no ``nextPageToken``. Tokens are
opaque and bound to the query they came from, so the other parameters must stay the same.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
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
               num_retries: int, stop: threading.Event | None = None) -> Iterator[dict[str, Any]]:
    """Every page of ``call(**params)`` (an SDK list method), in order, as dicts; once `stop`
    is set, no further page is requested.

    Runs in one worker thread; each page is one ``execute(num_retries=...)`` (the SDK's retry
    loop) and counts as one page of the current `CallContext`. Errors leave through
    `translate` as connector errors naming `what` and the page.
    """
    pager = JsonCursorPaginator()
    params = pager.init_request(params)
    while pager.has_next_page and not (stop is not None and stop.is_set()):
        label = f"{what} page {pager.pages + 1}"
        with translate(label):
            page = expect_dict(call(**params).execute(num_retries=num_retries), label)
        current().count(pages=1)
        pager.update_state(page)
        yield page
        params = pager.update_request(params)


_END = object()


async def stream_pages(run: Callable[[Callable[[Any], None]], asyncio.Future[None]],
                       method: Callable[[Any], Callable[..., Any]], params: dict[str, Any],
                       what: str, num_retries: int) -> AsyncIterator[dict[str, Any]]:
    """Every page of a list method, in order, read by one worker job that keeps its thread
    from the first page to the last (`iter_pages` there) and hands each page to this loop.

    `run(job)` runs ``job(service)`` in a worker thread (`ServicePool.run` bound to a context);
    `method(directory)` picks the SDK list method (``lambda d: d.users.list``).

    Invariant: a page is requested as soon as the one before it has arrived. A list is a
    chain (each token comes from the page before), so a job per page would wait in the pool's
    queue behind every job queued meanwhile (the member reads, hundreds of them), and the
    whole list would trail behind them. The job holds one of the pool's threads, so requests in
    flight stay within the pool's size. Once the consumer stops (done, failed or cancelled),
    the job sends no further request.
    """
    loop = asyncio.get_running_loop()
    pages: asyncio.Queue[Any] = asyncio.Queue()
    stop = threading.Event()

    def job(svc: Any) -> None:
        for page in iter_pages(method(svc), params, what, num_retries, stop):
            try:
                loop.call_soon_threadsafe(pages.put_nowait, page)
            except RuntimeError:  # the loop is closed: nobody reads on
                return

    fut = run(job)
    # runs after every page the job handed over: each was scheduled before the job returned
    fut.add_done_callback(lambda _: pages.put_nowait(_END))
    try:
        while True:
            page = await pages.get()
            if page is _END:
                fut.result()  # the read's error, after the pages read before it
                return
            yield page
    finally:
        stop.set()
        if not fut.done():
            fut.cancel()  # not started yet: it never will; running: it stops at the next page
        fut.add_done_callback(_retrieve)


def _retrieve(fut: asyncio.Future[Any]) -> None:
    """Mark an abandoned job's error as seen (it was raised, or the read had already failed)."""
    if not fut.cancelled():
        fut.exception()
