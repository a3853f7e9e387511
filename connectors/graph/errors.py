"""The one boundary where SDK, azure-identity and HTTP exceptions become connector errors.

Mapping (most specific first; every foreign exception leaves as a `ConnectorError`)::

    ConnectorError                        passed through unchanged
    kiota APIError / ODataError by status:
        401, 403 (not throttling)   ->    AuthError
        404                         ->    NotFoundError
        410 syncStateNotFound/...   ->    CursorExpired
        429 (also 403 throttling)   ->    ThrottledError
        5xx, 408                    ->    UnavailableError
        other 4xx                   ->    ConfigError (the request itself is wrong)
    azure ClientAuthenticationError ->    AuthError
    azure ServiceRequestError / HttpResponseError -> UnavailableError (token endpoint down)
    kiota HTTPError ("Only https")  ->    ConfigError
    httpx TimeoutException / TransportError -> UnavailableError
    orjson JSONDecodeError, ValueError from a page -> BadDataError

Messages name the operation, status and Graph error code only: never a token, secret, or a
URL with its query (`$skiptoken` / `$deltatoken` values are sync state and are redacted).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import orjson
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
)
from kiota_abstractions.api_error import APIError
from kiota_authentication_azure._exceptions import HTTPError as KiotaAuthHTTPError

from connectors.base import (
    AuthError,
    BadDataError,
    ConfigError,
    ConnectorError,
    CursorExpired,
    NotFoundError,
    ThrottledError,
    UnavailableError,
)

_SECRET_PARAMS = re.compile(
    r"((?:\$|%24)?(?:skiptoken|deltatoken|client_secret|access_token|code|sig|token)=)[^&#\s]*",
    re.IGNORECASE)


def redact_url(url: str) -> str:
    """`url` with the values of token-like query parameters replaced by `REDACTED`."""
    return _SECRET_PARAMS.sub(r"\1REDACTED", url)


def graph_code(exc: APIError) -> str:
    """The Graph error code (`TooManyRequests`, `syncStateNotFound`, …) of an ODataError, or ''."""
    err = getattr(exc, "error", None)
    return (getattr(err, "code", None) or "") if err is not None else ""


def status_error(status: int, code: str, what: str) -> ConnectorError:
    """The connector error for an HTTP error status and Graph error code."""
    detail = f"{what}: HTTP {status}" + (f" {code}" if code else "")
    if status == 429 or (status == 403 and "throttl" in code.lower()):
        return ThrottledError(f"{detail} (throttled; retries or time budget exhausted)")
    if status in (401, 403):
        return AuthError(f"{detail} (credentials rejected or permission missing)")
    if status == 404:
        return NotFoundError(detail)
    if status == 410 or code in ("syncStateNotFound", "resyncRequired", "syncStateInvalid"):
        return CursorExpired(f"{detail} (delta token expired)")
    if status >= 500 or status == 408:
        return UnavailableError(detail)
    return ConfigError(f"{detail} (request refused)")


@contextmanager
def translate(what: str) -> Iterator[None]:
    """Run the body; re-raise any foreign exception as a connector error `from` it.

    `what` names the operation for messages ("GET /groups/{id}/transitiveMembers"); it must
    not contain secrets.
    """
    try:
        yield
    except ConnectorError:
        raise
    except APIError as exc:  # ODataError is a subclass
        status = int(getattr(exc, "response_status_code", 0) or 0)
        raise status_error(status, graph_code(exc), what) from exc
    except ClientAuthenticationError as exc:
        raise AuthError(f"{what}: token request refused ({_aad_code(exc)})") from exc
    except (ServiceRequestError, HttpResponseError) as exc:
        raise UnavailableError(f"{what}: token endpoint unavailable ({type(exc).__name__})") from exc
    except KiotaAuthHTTPError as exc:
        raise ConfigError(f"{what}: {exc}") from exc
    except httpx.TimeoutException as exc:
        raise UnavailableError(f"{what}: request timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise UnavailableError(f"{what}: connection failed ({type(exc).__name__})") from exc
    except orjson.JSONDecodeError as exc:
        raise BadDataError(f"{what}: response is not valid JSON") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise BadDataError(f"{what}: unexpected response shape ({type(exc).__name__})") from exc


def _aad_code(exc: Exception) -> str:
    m = re.search(r"AADSTS\d+", str(exc))
    return m.group(0) if m else type(exc).__name__
