"""Several GETs in one Microsoft Graph JSON batch (`POST /$batch`, at most 20 requests).

https://learn.microsoft.com/graph/json-batching. Invariants:

- A batch body is ``{"requests": [{"id", "method": "GET", "url"}]}`` with at most `size`
  (1..20) requests, ids unique within the batch, URLs relative to the service root
  (``/groups/{id}/transitiveMembers?…``), sent as ``application/json``. Answers
  (``{"responses": [{"id", "status", "headers", "body"}]}``) are matched by id, in whatever
  order they come.
- The POST goes through `GraphApi.get_json`: auth, middleware, kiota's retries of a throttled
  or unavailable batch, get_json's retries, the deadline and the error mapping all apply to it
  as to any request.
- Inner answers are retried as a direct request would be: 429/503/504 after the inner
  ``Retry-After`` (kiota's `RetryHandler` computes the delay, so the backoff without one, the
  180 s cap and `retry_delay` are kiota's); other 5xx, 408 and a body that is not a JSON
  object with get_json's backoff. Each request gets at most `max_retries` retries and is sent
  again, alone with the other retried ones, in a later batch; a wait that would pass the
  deadline ends it with `BudgetExceeded`. Any other inner status becomes the connector error a
  direct request would raise (`errors.status_error`). Every inner 429 counts as a throttle,
  every inner page as a page (the batch envelope itself is not a page).
- An answer of 400/404/405/501 to the POST, or one that is not a batch response (unparseable,
  no ``responses`` list, a response without id or status, a request left unanswered), means
  the server has no usable ``$batch``: `BatchUnsupported` is raised and nothing is returned
  (also for a URL outside the service root, which a batch cannot name).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import orjson
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_http.middleware import RetryHandler
from kiota_http.middleware.options import RetryHandlerOption

from connectors.base import BadDataError, BudgetExceeded, ConnectorError
from connectors.graph.client import CURRENT_STATS, GraphApi
from connectors.graph.errors import status_error

#: Graph's limit of requests in one batch
MAX_BATCH = 20
#: statuses of the POST that mean the server has no `$batch`
UNSUPPORTED = frozenset({400, 404, 405, 501})
#: inner statuses kiota's RetryHandler would retry on a direct request
_KIOTA_RETRIED = frozenset(RetryHandler.DEFAULT_RETRY_STATUS_CODES)

#: a page (JSON object) or the error that reading it ended with
Outcome = dict[str, Any] | ConnectorError


class BatchUnsupported(Exception):
    """The server answered a batch with something other than a batch response."""


def batch_request(base_url: str, requests: list[dict[str, str]]) -> RequestInformation:
    """The `POST {base_url}/$batch` carrying `requests` as its JSON body."""
    info = RequestInformation(Method.POST)
    info.url = f"{base_url}/$batch"
    info.headers.try_add("Accept", "application/json")
    info.set_stream_content(orjson.dumps({"requests": requests}), "application/json")
    return info


def relative_url(base_url: str, url: str) -> str:
    """`url` relative to the service root `base_url` (as a batch request names it)."""
    if not url.startswith(base_url + "/"):
        raise ValueError(f"{url!r} is not under {base_url!r}")
    return url[len(base_url):]


def _responses(answer: dict[str, Any], ids: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The inner responses of `answer` by id; raises `BatchUnsupported` unless every id in
    `ids` is answered by a response with a string id and an integer status."""
    found = answer.get("responses")
    if not isinstance(found, list):
        raise BatchUnsupported("the answer has no 'responses' list")
    by_id: dict[str, dict[str, Any]] = {}
    for r in found:
        if not isinstance(r, dict) or not isinstance(r.get("id"), str) \
                or not isinstance(r.get("status"), int):
            raise BatchUnsupported("a response without a string id and an integer status")
        by_id[r["id"]] = r
    if any(rid not in by_id for rid in ids):
        raise BatchUnsupported("a request of the batch got no response")
    return by_id


def _error_code(body: Any) -> str:
    err = body.get("error") if isinstance(body, dict) else None
    code = err.get("code") if isinstance(err, dict) else None
    return code if isinstance(code, str) else ""


class Batcher:
    """Sends GETs in batches of at most `size` over one `GraphApi` (see the module invariants).

    `max_retries` and `retry_delay` are the connector's (retries per request; seconds kiota
    adds to each backoff when no `Retry-After` comes)."""

    def __init__(self, api: GraphApi, *, size: int, max_retries: int, retry_delay: float) -> None:
        if not 1 <= size <= MAX_BATCH:
            raise ValueError(f"batch size must be 1..{MAX_BATCH}, not {size}")
        self.api, self.size, self.max_retries = api, size, max_retries
        self._retry_delay = retry_delay
        self._kiota = RetryHandler(RetryHandlerOption(delay=retry_delay, max_retries=max_retries))

    async def get_many(self, urls: Mapping[str, str], *, what: Callable[[str], str],
                       deadline: float) -> dict[str, Outcome]:
        """GET every absolute URL of `urls` (key → URL, at most `size`) through batches.

        Returns each key's page, or the `ConnectorError` its read ended with (`what(key)` names
        the read in messages); an error of the POST itself is every key's error. Raises
        `BatchUnsupported` (nothing read) when the server has no usable `$batch`."""
        if len(urls) > self.size:
            raise ValueError(f"{len(urls)} requests do not fit in a batch of {self.size}")
        base = self.api.base_url
        keys = dict(zip(map(str, range(len(urls))), urls, strict=True))  # request id -> key
        try:
            rel = {rid: relative_url(base, urls[key]) for rid, key in keys.items()}
        except ValueError as exc:
            raise BatchUnsupported(str(exc)) from None
        tries = dict.fromkeys(keys, 0)
        out: dict[str, Outcome] = {}
        pending = keys
        loop = asyncio.get_running_loop()
        stats = CURRENT_STATS.get()
        while pending:
            info = batch_request(base, [{"id": rid, "method": "GET", "url": rel[rid]} for rid in pending])
            try:
                answer = await self.api.get_json(info, what="POST /$batch", deadline=deadline)
            except BadDataError as exc:
                raise BatchUnsupported(f"the answer is not a batch response ({exc})") from exc
            except ConnectorError as exc:
                if getattr(exc.__cause__, "response_status_code", None) in UNSUPPORTED:
                    raise BatchUnsupported(str(exc)) from exc
                out.update((key, exc) for key in pending.values())
                return out
            if stats is not None:
                stats.pages -= 1  # get_json counted the envelope; its pages are counted below
            by_id = _responses(answer, pending)
            retry: dict[str, str] = {}
            wait = 0.0
            for rid, key in pending.items():
                r = by_id[rid]
                status, body = r["status"], r.get("body")
                if 200 <= status < 300 and isinstance(body, dict):
                    out[key] = body
                    if stats is not None:
                        stats.pages += 1
                    continue
                if status == 429 and stats is not None:
                    stats.throttles += 1
                pause = self._pause(status, r.get("headers"), tries[rid])
                if pause is None and 200 <= status < 300:
                    out[key] = BadDataError(f"{what(key)}: answer is not a JSON object")
                elif pause is None:
                    out[key] = status_error(status, _error_code(body), what(key))
                elif loop.time() + pause >= deadline:
                    out[key] = BudgetExceeded(f"{what(key)}: time budget exhausted while retrying")
                else:
                    tries[rid] += 1
                    retry[rid] = key
                    wait = max(wait, pause)
            if retry:
                await asyncio.sleep(wait)
            pending = retry
        return out

    def _pause(self, status: int, headers: Any, tries: int) -> float | None:
        """Seconds to wait before retrying an inner answer `status` after `tries` retries, or
        None if it is final (not retryable, retries used up, or a wait kiota would refuse)."""
        if tries >= self.max_retries:
            return None
        if status in _KIOTA_RETRIED:
            hdrs = {str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {}
            delay = self._kiota.get_delay_time(tries, httpx.Response(status, headers=hdrs),
                                               self._retry_delay)
            return delay if delay < RetryHandlerOption.MAX_DELAY else None
        if status >= 500 or status == 408 or 200 <= status < 300:
            return 0.25 * 2 ** tries + random.random() * 0.25  # get_json's backoff
        return None
