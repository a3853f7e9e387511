"""The one boundary where python-keycloak, httpx and HTTP failures become connector errors.

Mapping::

    failure                                               connector error
    ────────────────────────────────────────────────────  ───────────────────────────────
    429 (a proxy or gateway in front of Keycloak;         ThrottledError  (retry_after from
      Keycloak itself does not rate-limit the admin API)    `Retry-After`, seconds or date)
    5xx, httpx timeouts / connect errors / resets         UnavailableError
    token endpoint 400/401 (`invalid_client`,             AuthError
      `unauthorized_client`, `unauthorized_client` for a
      client without service accounts), admin 401 / 403
    404                                                   NotFoundError
    other 4xx                                             BadDataError (the request was refused
                                                            as malformed: a bug or an old server)

Keycloak's admin API error body is `{"error": "...", "error_description"?: "..."}`; the token
endpoint's is the OAuth 2.0 one, `{"error", "error_description"}`. Only those fields are quoted in
messages; the client secret is never part of one.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson
from keycloak.exceptions import KeycloakConnectionError, KeycloakError

from connectors.base import (
    AuthError,
    BadDataError,
    ConnectorError,
    NotFoundError,
    ThrottledError,
    UnavailableError,
)


def error_text(body: bytes | str | None) -> str:
    """`error: error_description` from a Keycloak/OAuth error body, else a short excerpt."""
    if not body:
        return "no body"
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode(errors="replace") if isinstance(body, bytes) else body
        return text.strip()[:120] or "no body"
    if isinstance(obj, dict):
        parts = [str(obj[k]) for k in ("error", "error_description", "errorMessage") if obj.get(k)]
        if parts:
            return ": ".join(parts)[:200]
    return "unexpected error body"


def retry_after(headers: Any) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date), else None."""
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def from_status(
    status: int, body: bytes | None, headers: Any, *, what: str, token_endpoint: bool = False
) -> ConnectorError:
    text = error_text(body)
    if status == 429:
        err: ConnectorError = ThrottledError(f"{what}: rate limited (HTTP 429)")
        err.retry_after = retry_after(headers)  # type: ignore[attr-defined]
        return err
    if status >= 500:
        return UnavailableError(f"{what}: Keycloak answered HTTP {status} ({text})")
    if token_endpoint and status in (400, 401, 403):
        return AuthError(
            f"{what}: the realm's token endpoint refused the client credentials ({text}); check "
            "client_id/client_secret and that the client has 'Service accounts roles' enabled"
        )
    if status == 401:
        return AuthError(f"{what}: Keycloak refused the access token (HTTP 401, {text})")
    if status == 403:
        return AuthError(
            f"{what}: the service account may not read this (HTTP 403, {text}); give it the "
            "realm-management roles view-users and query-groups"
        )
    if status == 404:
        return NotFoundError(f"{what}: not found ({text})")
    return BadDataError(f"{what}: Keycloak refused the request (HTTP {status}, {text})")


def no_answer(exc: BaseException) -> bool:
    """Whether an SDK exception means no HTTP answer came at all (refused, reset, timed out)."""
    cause = exc.__cause__
    if isinstance(cause, ConnectorError):
        return False
    return isinstance(exc, KeycloakConnectionError | httpx.TransportError)


def from_sdk(exc: BaseException, *, what: str) -> ConnectorError:
    """A python-keycloak or httpx exception as a connector error."""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc.__cause__, ConnectorError):  # raised in an httpx hook (the breaker)
        return exc.__cause__
    if isinstance(exc, KeycloakConnectionError):
        cause = exc.__cause__
        detail = type(cause).__name__ if cause is not None else "connection failed"
        return UnavailableError(f"{what}: cannot reach Keycloak ({detail})")
    if isinstance(exc, KeycloakError):
        # only the token request goes through the SDK's error path (raise_error_from_response)
        return from_status(
            exc.response_code or 0,
            exc.response_body,
            None,
            what=f"{what} (access token)",
            token_endpoint=True,
        )
    if isinstance(exc, httpx.HTTPError):
        return UnavailableError(f"{what}: cannot reach Keycloak ({type(exc).__name__})")
    if isinstance(exc, (TypeError, ValueError)):  # the SDK got a non-object token answer
        return BadDataError(f"{what} (access token): the token endpoint sent no token object")
    raise exc
