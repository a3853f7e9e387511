"""The one boundary where auth0-python, httpx and HTTP failures become connector errors.

Mapping (most specific first)::

    SDK / transport failure                              connector error
    ───────────────────────────────────────────────────  ──────────────────────────────────
    HTTP 429 (too_many_requests), retries used up        ThrottledError  (retry_after from
                                                                          x-ratelimit-reset)
    HTTP 401 (Invalid token), 403 (insufficient_scope)   AuthError
    token endpoint 401/403 (access_denied, …)            AuthError
    HTTP 404 (inexistent_user, …)                        NotFoundError
    HTTP 400/405/415 (a request we built is refused)     ConfigError
    HTTP 5xx, 408                                        UnavailableError
    httpx / requests timeouts, connection errors         UnavailableError
    body not JSON / not the expected shape               BadDataError

Messages carry the HTTP status, Auth0's errorCode and message, never a token or secret.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from connectors.base import (
    AuthError,
    BadDataError,
    ConfigError,
    ConnectorError,
    NotFoundError,
    PermanentError,
    ThrottledError,
    UnavailableError,
)

_SECRET_PARAMS = re.compile(r"(?i)((?:token|access_token|client_secret|password|signature)=)[^&\s\"']+")
_AUTH_VALUE = re.compile(r"(?i)\bBearer\s*[A-Za-z0-9._~+/=-]{8,}")


def redact(text: str, *secrets: str | None) -> str:
    """`text` with credential query parameters, bearer values and `secrets` masked."""
    text = _SECRET_PARAMS.sub(r"\1***", text)
    text = _AUTH_VALUE.sub("Bearer ***", text)
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return text


def retry_after(headers: Any, now: float | None = None) -> float | None:
    """Seconds Auth0 asks us to wait: `x-ratelimit-reset` (epoch seconds) - now, at least 0."""
    try:
        reset = float(headers.get("x-ratelimit-reset"))
    except (TypeError, ValueError, AttributeError):
        return None
    return max(0.0, reset - (time.time() if now is None else now))


def _auth0_error(body: bytes | str | None) -> tuple[str, str]:
    """(errorCode, message) of a Management API or OAuth error body; empty if absent."""
    if not body:
        return "", ""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "", ""
    if not isinstance(doc, dict):
        return "", ""
    code = str(doc.get("errorCode") or doc.get("error") or "")
    message = str(doc.get("message") or doc.get("error_description") or "")
    return code, message[:200]


def from_status(
    status: int, body: bytes | str | None, headers: Any, *, what: str, token_endpoint: bool = False
) -> ConnectorError:
    """The connector error for a non-2xx answer to the request described by `what`."""
    code, message = _auth0_error(body)
    detail = redact(
        f"{what}: HTTP {status}" + (f" {code}" if code else "") + (f" {message}" if message else "")
    )
    if status == 429:
        err: ConnectorError = ThrottledError(detail)
        err.retry_after = retry_after(headers)  # type: ignore[attr-defined]
        return err
    if status in (401, 403) or (token_endpoint and 400 <= status < 500):
        return AuthError(detail)
    if status == 404:
        return NotFoundError(detail)
    if status in (400, 405, 409, 415, 422):
        return ConfigError(detail)
    if status >= 500 or status == 408:
        return UnavailableError(detail)
    return PermanentError(detail)


def from_token_error(exc: BaseException, *, what: str) -> ConnectorError:
    """The connector error for a failure of `GetToken.client_credentials` (requests-based)."""
    from auth0.authentication.exceptions import Auth0Error, RateLimitError

    if isinstance(exc, RateLimitError):
        err: ConnectorError = ThrottledError(redact(f"{what}: HTTP 429 {exc.message}"))
        err.retry_after = max(0.0, exc.reset_at - time.time()) if exc.reset_at > 0 else None  # type: ignore[attr-defined]
        return err
    if isinstance(exc, Auth0Error):
        status = int(exc.status_code or 0)
        detail = redact(f"{what}: HTTP {status} {exc.error_code} {exc.message}"[:300])
        if status >= 500:
            return UnavailableError(detail)
        return AuthError(detail)
    return UnavailableError(redact(f"{what}: {type(exc).__name__} {exc}"[:300]))


@contextmanager
def translate(what: str, *secrets: str | None) -> Iterator[None]:
    """Map exceptions raised by the SDK, httpx or requests inside the block."""
    import httpx
    import requests

    try:
        yield
    except ConnectorError:
        raise
    except orjson.JSONDecodeError as exc:
        raise BadDataError(f"{what}: the answer is not valid JSON") from exc
    except (
        httpx.UnsupportedProtocol,
        httpx.InvalidURL,
        requests.exceptions.InvalidURL,
        requests.exceptions.MissingSchema,
    ) as exc:
        raise ConfigError(redact(f"{what}: {type(exc).__name__} {exc}", *secrets)) from exc
    except (TimeoutError, httpx.TransportError, requests.RequestException, OSError) as exc:
        raise UnavailableError(redact(f"{what}: {type(exc).__name__} {exc}", *secrets)) from exc
    except (KeyError, TypeError, AttributeError) as exc:
        raise BadDataError(redact(f"{what}: unexpected answer shape ({exc!r})", *secrets)) from exc
