"""The one boundary where OneLogin SDK, urllib3 and HTTP failures become connector errors.

Mapping (most specific first)::

    SDK / transport failure                          connector error
    ───────────────────────────────────────────────  ──────────────────────────────────────
    HTTP 429                                         ThrottledError  (retry_after from
                                                                      X-RateLimit-Reset, seconds)
    HTTP 401, token endpoint 400/401                 AuthError
    HTTP 403 (the API credential lacks the scope)    AuthError
    HTTP 404                                         NotFoundError
    HTTP 400, 405, 406, 415, 422                     ConfigError     (a query we built is refused)
    HTTP 5xx, 408                                    UnavailableError
    ApiException status 0 (the SDK's TLS failure)    ConfigError
    urllib3 LocationParseError                       ConfigError
    urllib3 HTTPError (timeouts, refused, reset)     UnavailableError
    body not JSON / not the expected shape           BadDataError

OneLogin sends two error body shapes: v2 `{"statusCode", "name", "message"}` and v1 / token
endpoint `{"status": {"error", "code", "type", "message"}}`; messages carry the HTTP status and
that message, never a client secret or token (`redact`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import urllib3
from onelogin.exceptions import ApiException, ApiValueError

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

_AUTH_VALUE = re.compile(r"(?i)\b(Bearer|Basic|bearer:)\s*[A-Za-z0-9._~+/=-]{8,}")


def redact(text: str, *secrets: str | None) -> str:
    """`text` with auth header values and `secrets` masked."""
    text = _AUTH_VALUE.sub(r"\1 ***", text)
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return text


def retry_after(headers: Any) -> float | None:
    """Seconds OneLogin asks us to wait: `X-RateLimit-Reset` (seconds until the window resets)."""
    try:
        return max(0.0, float(headers.get("X-RateLimit-Reset")))
    except (TypeError, ValueError, AttributeError):
        return None


def _message(body: Any) -> str:
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8", "replace")
    if not body:
        return ""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(doc, dict):
        return ""
    status = doc.get("status")
    if isinstance(status, dict):
        return str(status.get("message") or status.get("type") or "")[:200]
    return str(doc.get("message") or doc.get("name") or doc.get("error_description") or "")[:200]


def from_status(
    status: int, body: Any, headers: Any, *, what: str, token_endpoint: bool = False
) -> ConnectorError:
    """The connector error for a non-2xx answer to the request described by `what`."""
    msg = _message(body)
    detail = redact(f"{what}: HTTP {status}" + (f" {msg}" if msg else ""))
    if status == 429:
        err: ConnectorError = ThrottledError(detail)
        err.retry_after = retry_after(headers)  # type: ignore[attr-defined]
        return err
    if status in (401, 403) or (token_endpoint and status == 400):
        return AuthError(detail)
    if status == 404:
        return NotFoundError(detail)
    if status in (400, 405, 406, 415, 422):
        return ConfigError(detail)
    if status >= 500 or status == 408:
        return UnavailableError(detail)
    return PermanentError(detail)


@contextmanager
def translate(what: str, *secrets: str | None, token_endpoint: bool = False) -> Iterator[None]:
    """Map exceptions raised by the SDK or urllib3 inside the block."""
    try:
        yield
    except ConnectorError:
        raise
    except ApiException as exc:
        if not exc.status:  # the SDK wraps TLS failures as status 0
            raise ConfigError(redact(f"{what}: {exc.reason}", *secrets)) from None
        raise from_status(
            int(exc.status), exc.body, exc.headers or {}, what=what, token_endpoint=token_endpoint
        ) from None
    except orjson.JSONDecodeError as exc:
        raise BadDataError(f"{what}: the answer is not valid JSON") from exc
    except (urllib3.exceptions.LocationParseError, ApiValueError) as exc:
        raise ConfigError(redact(f"{what}: {exc}", *secrets)) from None
    except (urllib3.exceptions.HTTPError, OSError, TimeoutError) as exc:
        raise UnavailableError(redact(f"{what}: {type(exc).__name__}", *secrets)) from None
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise BadDataError(redact(f"{what}: unexpected answer shape ({exc!r})", *secrets)) from None
