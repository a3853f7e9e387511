"""The SCIM 2.0 client of one target: httpx over an injected transport, one error boundary.

Every HTTP outcome becomes a value or a `syncd.targets.errors` exception in `_send` (the only
place httpx errors are caught). Retries live in `request`: throttled and unreachable answers are
retried with exponential backoff (honouring `Retry-After`), transient ones (5xx, timeouts) too
unless the request is a POST, whose effect is unknown after a timeout: the caller looks the
object up before it creates again. Refused, gone, conflict and rejected answers are never retried.

`stats` counts every request by status ("timeout"/"unreachable" when nothing answered), and writes
(non-GET requests) separately; `on_request(method, status)` feeds the daemon's metrics.
Filters are sent, but results are always checked client-side (`find`): a target may ignore them.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from syncd.targets.errors import (
    BadResponse,
    Conflict,
    Gone,
    Refused,
    Rejected,
    TargetError,
    Throttled,
    Transient,
    Unreachable,
)

SCIM_JSON = "application/scim+json"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
#: phrases of LiteLLM-style gateways that answer SCIM routes without their enterprise licence
_LICENCE_WORDS = ("enterprise", "premium", "licen")


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries in all; waits grow from `base` seconds, doubling, up to `cap` seconds,
    with full jitter; a target's `Retry-After` is honoured up to `max_retry_after` seconds."""

    attempts: int = 6
    base: float = 0.25
    cap: float = 20.0
    max_retry_after: float = 120.0

    def wait(self, attempt: int, err: TargetError) -> float:
        if isinstance(err, Throttled) and err.retry_after is not None:
            return min(err.retry_after, self.max_retry_after)
        return random.uniform(0, min(self.cap, self.base * 2**attempt))


@dataclass
class RequestStats:
    """Requests made, by status (thread-safe)."""

    by_status: Counter[str] = field(default_factory=Counter)
    writes: int = 0
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, method: str, status: str) -> None:
        with self._lock:
            self.by_status[status] += 1
            if method != "GET":
                self.writes += 1

    @property
    def requests(self) -> int:
        return sum(self.by_status.values())


def error_detail(resp: httpx.Response) -> tuple[str, str | None]:
    """(message, scimType) from a SCIM Error body, FastAPI's `{"detail": ...}`, or the raw text."""
    try:
        body = resp.json()
    except ValueError:
        return (resp.text.strip()[:300] or resp.reason_phrase or f"HTTP {resp.status_code}"), None
    if isinstance(body, dict):
        detail = body.get("detail")
        scim_type = body.get("scimType") if isinstance(body.get("scimType"), str) else None
        if isinstance(detail, dict):  # LiteLLM: {"detail": {"error": "..."}}
            detail = detail.get("error") or detail.get("message") or detail
        if isinstance(detail, list):  # FastAPI validation errors
            detail = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
        if detail is None:
            detail = body.get("error") or body.get("message")
        if detail is not None:
            return " ".join(str(detail).split())[:300], scim_type
    return str(body)[:300], None


def _retry_after(resp: httpx.Response) -> float | None:
    raw = resp.headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def translate(resp: httpx.Response, what: str) -> TargetError:
    """The error for a non-2xx answer to `what` (e.g. "POST /Users")."""
    status = resp.status_code
    msg, scim_type = error_detail(resp)
    text = f"{what}: HTTP {status}: {msg}"
    if status in (401, 403):
        if any(w in msg.lower() for w in _LICENCE_WORDS):
            text += " (the gateway's SCIM routes need its enterprise licence)"
        else:
            text += " (check the target's token: a gateway makes it on Admin Settings > SCIM)"
        return Refused(text, status=status, scim_type=scim_type)
    if status == 429:
        return Throttled(text, retry_after=_retry_after(resp))
    if status == 404:
        return Gone(text, status=status, scim_type=scim_type)
    if status == 409 or scim_type == "uniqueness":
        return Conflict(text, status=status, scim_type=scim_type)
    if status >= 500 or status in (408, 502, 503, 504):
        if status == 503 and resp.headers.get("retry-after"):
            return Throttled(text, status=status, retry_after=_retry_after(resp))
        return Transient(text, status=status, scim_type=scim_type)
    if status in (400,) and any(w in msg.lower() for w in _LICENCE_WORDS):
        return Refused(text + " (the gateway's SCIM routes need its enterprise licence)", status=status)
    return Rejected(text, status=status, scim_type=scim_type)


class ScimClient:
    """One target's SCIM endpoint. Thread-safe (httpx.Client is); `close()` when done."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_request: Callable[[str, str], None] | None = None,
        max_connections: int = 16,
    ) -> None:
        headers = {"Accept": f"{SCIM_JSON}, application/json", "User-Agent": "syncd"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            headers=headers,
            transport=transport,
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.stats = RequestStats()
        self.on_request = on_request

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ScimClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the boundary -------------------------------------------------------------------------

    def _send(self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        what = f"{method} /{path}"
        kw: dict[str, Any] = {"params": params}
        if body is not None:
            import json

            kw["content"] = json.dumps(body).encode()
            kw["headers"] = {"Content-Type": SCIM_JSON}
        status = "unreachable"
        try:
            try:
                resp = self._http.request(method, path, **kw)
            except httpx.TimeoutException as exc:
                status = "timeout"
                raise Transient(f"{what}: timed out ({type(exc).__name__})") from exc
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                if isinstance(exc, httpx.ConnectError):
                    raise Unreachable(f"{what}: cannot connect to {self.base_url}: {exc}") from exc
                status = "timeout"  # the connection broke mid-request: the effect is unknown
                raise Transient(f"{what}: connection lost ({type(exc).__name__}: {exc})") from exc
            except httpx.HTTPError as exc:
                raise Unreachable(f"{what}: {type(exc).__name__}: {exc}") from exc
            status = str(resp.status_code)
        finally:
            self.stats.count(method, status)
            if self.on_request is not None:
                self.on_request(method, status)
        if resp.status_code >= 300:
            raise translate(resp, what)
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return resp.json()
        except ValueError as exc:
            raise BadResponse(f"{what}: HTTP {resp.status_code} with a body that is not JSON") from exc

    def request(
        self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        """`_send` with retries (see the module docstring); raises the last error when they run out."""
        attempt = 0
        while True:
            try:
                return self._send(method, path, body=body, params=params)
            except (Throttled, Unreachable, Transient) as err:
                if isinstance(err, Transient) and method == "POST":
                    raise
                attempt += 1
                if attempt >= self.retry.attempts:
                    raise
                self.stats.retries += 1
                self.sleep(self.retry.wait(attempt, err))

    # -- resources ----------------------------------------------------------------------------

    def list_page(
        self,
        resource: str,
        *,
        start: int,
        count: int,
        filter: str | None = None,
        attributes: str | None = None,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """One page of `resource` ("Users"/"Groups"): (resources, totalResults as answered)."""
        params: dict[str, Any] = {"startIndex": start, "count": count}
        if filter is not None:
            params["filter"] = filter
        if attributes is not None:
            params["excludedAttributes"] = attributes
        body = self.request("GET", resource, params=params)
        if not isinstance(body, dict):
            raise BadResponse(f"GET /{resource}: expected a ListResponse, got {type(body).__name__}")
        items = body.get("Resources", body.get("resources", []))
        if not isinstance(items, list) or not all(isinstance(i, dict) and i.get("id") for i in items):
            raise BadResponse(f"GET /{resource}: Resources is not a list of resources with ids")
        total = body.get("totalResults")
        return items, total if isinstance(total, int) and not isinstance(total, bool) else None

    def get(self, resource: str, rid: str) -> dict[str, Any]:
        return self._resource("GET", f"{resource}/{_seg(rid)}")

    def create(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._resource("POST", resource, body)

    def replace(self, resource: str, rid: str, body: dict[str, Any]) -> dict[str, Any] | None:
        return self.request("PUT", f"{resource}/{_seg(rid)}", body=body)

    def patch(self, resource: str, rid: str, ops: list[dict[str, Any]]) -> Any:
        return self.request(
            "PATCH", f"{resource}/{_seg(rid)}", body={"schemas": [PATCH_OP], "Operations": ops}
        )

    def delete(self, resource: str, rid: str) -> None:
        self.request("DELETE", f"{resource}/{_seg(rid)}")

    def find(self, resource: str, attr: str, value: str, *, scan: bool = True) -> list[dict[str, Any]]:
        """Resources whose `attr` equals `value` (case-insensitive), checked here whatever the
        target did with the filter. A target that ignores the filter lists everything: with
        `scan` every page is read; without, the search stops at the first page that shows the
        filter was ignored (a resource that does not match)."""
        from syncd.targets.paging import IndexPaging

        quoted = value.replace("\\", "\\\\").replace('"', '\\"')
        want = value.casefold()
        found = []
        for page in IndexPaging().pages(self, resource, filter=f'{attr} eq "{quoted}"'):
            ignored = False
            for r in page:
                got = r.get(attr)
                if isinstance(got, str) and got.casefold() == want:
                    found.append(r)
                else:
                    ignored = True
            if ignored and not scan:
                break
        return found

    def _resource(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        got = self.request(method, path, body=body)
        if not isinstance(got, dict) or not isinstance(got.get("id"), str) or not got["id"]:
            raise BadResponse(f"{method} /{path}: the answer is not a resource with an id")
        return got


def _seg(rid: str) -> str:
    from urllib.parse import quote

    return quote(rid, safe="")
