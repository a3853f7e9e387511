"""The one boundary where Okta SDK, aiohttp and HTTP failures become connector errors.

Mapping (most specific first)::

    SDK / transport failure                         connector error
    ──────────────────────────────────────────────  ─────────────────────────────────────
    HTTP 429 (E0000047), SDK retries used up        ThrottledError   (retry_after from
                                                                      X-Rate-Limit-Reset - Date)
    HTTP 401, token endpoint 400/401 (invalid_*)    AuthError
    HTTP 403 (E0000006 permission, E0000005)        AuthError
    HTTP 404 (E0000007)                             NotFoundError
    HTTP 400 on a time-window read (since/filter)   CursorExpired    (caller falls back to full)
    HTTP 400 otherwise                              ConfigError      (a query we built is refused)
    HTTP 5xx, "Request Timeout exceeded."           UnavailableError
    aiohttp ClientSSLError / InvalidURL             ConfigError
    aiohttp ClientError, asyncio.TimeoutError       UnavailableError
    body not JSON / not the expected shape          BadDataError
    ValueError from the SDK's config / JWT signing  ConfigError

Messages carry the HTTP status, Okta's errorCode and errorSummary, never a token, key or
assertion: `redact` strips credentials from anything that may reach a message or a log.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson

from connectors.base import (
    AuthError,
    BadDataError,
    ConfigError,
    ConnectorError,
    CursorExpired,
    NotFoundError,
    PermanentError,
    ThrottledError,
    UnavailableError,
)

_SECRET_PARAMS = re.compile(
    r"(?i)((?:token|access_token|client_assertion|client_secret|password|key|sig)=)[^&\s\"']+")
_AUTH_VALUE = re.compile(r"(?i)\b(SSWS|Bearer|DPoP)\s*[A-Za-z0-9._~+/=-]{8,}")


def redact(text: str, *secrets: str | None) -> str:
    """`text` with credential query parameters, auth header values and `secrets` masked."""
    text = _SECRET_PARAMS.sub(r"\1***", text)
    text = _AUTH_VALUE.sub(r"\1 ***", text)
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return text


def retry_after(headers: Any) -> float | None:
    """Seconds Okta asks us to wait: `X-Rate-Limit-Reset` (epoch s) - `Date`, at least 0."""
    try:
        reset = min(float(v) for v in headers.getall("X-Rate-Limit-Reset", []))
        date = parsedate_to_datetime(headers["Date"]).timestamp()
    except (KeyError, ValueError, TypeError, AttributeError):
        return None
    return max(0.0, reset - date)


def _okta_error(body: str | None) -> tuple[str, str]:
    """(errorCode, errorSummary) from an Okta or OAuth error body; empty strings if absent."""
    if not body:
        return "", ""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "", ""
    if not isinstance(doc, dict):
        return "", ""
    code = str(doc.get("errorCode") or doc.get("error") or "")
    summary = str(doc.get("errorSummary") or doc.get("error_description") or "")
    return code, summary[:200]


def from_status(status: int, body: str | None, headers: Any, *, what: str,
                window: bool = False, token_endpoint: bool = False) -> ConnectorError:
    """The connector error for a non-2xx answer to the request described by `what`."""
    code, summary = _okta_error(body)
    detail = f"{what}: HTTP {status}" + (f" {code}" if code else "") + \
        (f" {summary}" if summary else "")
    detail = redact(detail)
    if status == 429:
        err: ConnectorError = ThrottledError(detail)
        err.retry_after = retry_after(headers)  # type: ignore[attr-defined]
        return err
    if status == 401 or (token_endpoint and status == 400):
        return AuthError(detail)
    if status == 403:
        return AuthError(detail)
    if status == 404:
        return NotFoundError(detail)
    if status == 400 and window:
        return CursorExpired(detail)
    if status in (400, 405, 406, 415):
        return ConfigError(detail)
    if status >= 500 or status in (408, 425):
        return UnavailableError(detail)
    return PermanentError(detail)


def from_sdk_error(err: BaseException, response: Any, body: str | None, *, what: str,
                   window: bool = False, token_endpoint: bool = False) -> ConnectorError:
    """The connector error for an error object the SDK returned (it returns, not raises)."""
    status = getattr(response, "status", None) or getattr(err, "status", None)
    if isinstance(err, ConnectorError):
        return err
    if isinstance(err, aiohttp.ClientSSLError | aiohttp.InvalidURL):
        return ConfigError(redact(f"{what}: {type(err).__name__}"))
    if isinstance(err, aiohttp.ClientError | asyncio.TimeoutError | OSError):
        return UnavailableError(redact(f"{what}: {type(err).__name__} {err}"))
    if status:
        headers = getattr(response, "headers", None) or getattr(err, "headers", {})
        return from_status(int(status), body, headers, what=what, window=window,
                           token_endpoint=token_endpoint)
    msg = str(getattr(err, "message", "") or err)
    if "Timeout" in msg:
        return UnavailableError(redact(f"{what}: {msg}"))
    if token_endpoint or "access_token" in msg:
        return AuthError(redact(f"{what}: the token endpoint answered without a token"))
    return UnavailableError(redact(f"{what}: {type(err).__name__} {msg}"))


@contextmanager
def translate(what: str, *secrets: str | None) -> Iterator[None]:
    """Map exceptions raised (not returned) by the SDK or aiohttp inside the block."""
    try:
        yield
    except ConnectorError:
        raise
    except orjson.JSONDecodeError as exc:
        raise BadDataError(f"{what}: the answer is not valid JSON") from exc
    except (aiohttp.ClientSSLError, aiohttp.InvalidURL) as exc:
        raise ConfigError(redact(f"{what}: {type(exc).__name__}", *secrets)) from exc
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise UnavailableError(redact(f"{what}: {type(exc).__name__} {exc}", *secrets)) from exc
    except (KeyError, TypeError, AttributeError) as exc:
        raise BadDataError(redact(f"{what}: unexpected answer shape ({exc!r})", *secrets)) \
            from exc
    except ValueError as exc:
        raise ConfigError(redact(f"{what}: {exc}", *secrets)) from exc
