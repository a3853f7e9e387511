"""`stream_pages`: a Google list read as one worker job, its pages handed to the event loop.

The SDK's list method is scripted here (pages, or an error on one of them); what is under test
is the scheduling: the order of pages, errors after the pages read before them, no request
after the consumer stops, and a list that never waits in the pool's queue behind work queued
after it started (the member reads of a snapshot)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from connectors.base import ConnectorError
from connectors.google import client
from connectors.google.paging import stream_pages


class Scripted:
    """``list(**params).execute(num_retries=...)`` answering page after page; `fail_at` (a
    page number from 1) raises the SDK's HttpError (a 400) instead. With `gate`, each request
    after the first waits for a release of it first."""

    def __init__(self, pages: int, fail_at: int | None = None,
                 gate: threading.Semaphore | None = None) -> None:
        self.pages, self.fail_at, self.gate = pages, fail_at, gate
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def list(self, **params: Any) -> Any:
        scripted = self

        class Request:
            def execute(self, num_retries: int = 0) -> dict[str, Any]:
                with scripted.lock:
                    scripted.requests.append(params)
                    n = len(scripted.requests)
                if scripted.gate is not None and n > 1:
                    assert scripted.gate.acquire(timeout=10)
                if n == scripted.fail_at:
                    import httplib2

                    raise HttpError(httplib2.Response({"status": 400}), b'{"error": {}}')
                page: dict[str, Any] = {"items": [n]}
                if n < scripted.pages:
                    page["nextPageToken"] = f"t{n}"
                return page

        return Request()


def pool_run(pool: ThreadPoolExecutor) -> Any:
    """`ServicePool.run` without the SDK: the job runs in `pool` under a `CallContext`."""
    ctx = client.CallContext(deadline=time.monotonic() + 60, max_backoff=0.1)

    def in_thread(job: Any) -> Any:
        client._local.ctx = ctx
        try:
            return job(None)
        finally:
            client._local.ctx = None

    return lambda job: asyncio.wrap_future(pool.submit(in_thread, job))


async def collect(run: Any, api: Scripted, limit: int | None = None) -> list[int]:
    got: list[int] = []
    async for page in stream_pages(run, lambda _svc: api.list, {"maxResults": 1}, "things", 0):
        got.extend(page["items"])
        if limit is not None and len(got) >= limit:
            break
    return got


def test_pages_arrive_in_order_with_their_tokens() -> None:
    api = Scripted(pages=5)
    with ThreadPoolExecutor(2) as pool:
        assert asyncio.run(collect(pool_run(pool), api)) == [1, 2, 3, 4, 5]
    assert [r.get("pageToken") for r in api.requests] == [None, "t1", "t2", "t3", "t4"]


def test_an_error_comes_after_the_pages_read_before_it() -> None:
    api = Scripted(pages=5, fail_at=3)
    got: list[int] = []

    async def main(run: Any) -> None:
        async for page in stream_pages(run, lambda _svc: api.list, {}, "things", 0):
            got.extend(page["items"])

    with ThreadPoolExecutor(2) as pool, pytest.raises(ConnectorError, match="things page 3"):
        asyncio.run(main(pool_run(pool)))
    assert got == [1, 2]


def test_no_request_after_the_consumer_stops() -> None:
    """The consumer lets each next request go only after it took a page, and stops after the
    third: the fourth request is in flight then, and no fifth is sent."""
    gate = threading.Semaphore(0)
    api = Scripted(pages=1000, gate=gate)

    async def main(run: Any) -> list[int]:
        got: list[int] = []
        async with contextlib.aclosing(stream_pages(run, lambda _svc: api.list, {}, "things",
                                                    0)) as pages:
            async for page in pages:
                got.extend(page["items"])
                if len(got) == 3:
                    # the job asks for the fourth page as soon as it has handed the third over;
                    # stopping before it did would leave nothing in flight to test
                    for _ in range(1000):
                        if len(api.requests) == 4:
                            break
                        await asyncio.sleep(0.005)
                    break
                gate.release()
        return got

    with ThreadPoolExecutor(2) as pool:
        assert asyncio.run(main(pool_run(pool))) == [1, 2, 3]
        gate.release()  # the fourth request, sent before the consumer stopped, now ends
    assert len(api.requests) == 4


def test_the_list_does_not_wait_behind_jobs_queued_after_it_started() -> None:
    """Both threads of the pool busy, and 50 jobs queued behind them that wait for the list to
    end: a list that queued a job per page would never end."""
    api = Scripted(pages=20)
    listed = threading.Event()

    async def main(pool: ThreadPoolExecutor) -> list[int]:
        run = pool_run(pool)
        pages = stream_pages(run, lambda _svc: api.list, {}, "things", 0)
        got = [(await anext(pages))["items"][0]]  # the list's job holds a thread from here on
        waiting = [pool.submit(listed.wait, 30) for _ in range(50)]
        async for page in pages:
            got.extend(page["items"])
        listed.set()
        assert all(f.result() for f in waiting)  # each saw the list end
        return got

    with ThreadPoolExecutor(2) as pool:
        assert asyncio.run(asyncio.wait_for(main(pool), 20)) == list(range(1, 21))
