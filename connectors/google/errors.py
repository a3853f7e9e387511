"""The one boundary where SDK, auth and transport errors become `connectors.base` errors.

Mapping (most specific first; every mapped error is raised ``from`` the original)::

    ConnectorError (ours, e.g. BudgetExceeded from the budget check)  → unchanged
    googleapiclient.errors.HttpError
        401                                               → AuthError
        403 rateLimitExceeded / userRateLimitExceeded     → ThrottledError
        403 quotaExceeded (daily quota)                   → ThrottledError
        403 other (not an admin, missing scope, no DWD)   → AuthError
        404                                               → NotFoundError
        410                                               → CursorExpired
        429                                               → ThrottledError
        400 and other 4xx                                 → ConfigError (the request we built)
        5xx                                               → UnavailableError
    google.auth.exceptions.RefreshError (token endpoint said no)
        retryable (5xx, temporarily_unavailable)          → UnavailableError
        otherwise (invalid_grant, unauthorized_client)    → AuthError
    google.auth.exceptions.TransportError                 → UnavailableError
    google.auth.exceptions.GoogleAuthError (bad key/file) → ConfigError
    socket timeouts (TimeoutError)                        → UnavailableError
    httplib2.HttpLib2Error, ConnectionError, OSError      → UnavailableError
    JSON decode errors, answers of the wrong shape        → BadDataError

Messages name the failed read and Google's status, reason and message; they never contain
access tokens, assertions or keys (URLs are passed through `redact` before they are shown).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager

import google.auth.exceptions as gauth
import httplib2
import orjson
from googleapiclient.errors import HttpError

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

#: 403/429 reasons that mean "slow down"; the SDK retries the first two by itself.
RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"})
_SECRET_PARAMS = re.compile(
    r"(?i)([?&](?:access_token|assertion|client_secret|key|token|code)=)[^&#]*")


def redact(url: str) -> str:
    """`url` with the values of secret-bearing query parameters replaced by ``REDACTED``."""
    return _SECRET_PARAMS.sub(r"\1REDACTED", url)


def google_error(status: int, content: bytes | str | None) -> tuple[str, str]:
    """(reason, message) from Google's error body; ("", "") when the body is not one."""
    try:
        err = orjson.loads(content or b"")["error"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return "", ""
    if not isinstance(err, dict):  # the token endpoint's {"error": "invalid_grant", ...}
        return str(err), ""
    details = err.get("errors") or [{}]
    reason = details[0].get("reason", "") if isinstance(details[0], dict) else ""
    return str(reason or err.get("status", "")), str(err.get("message", ""))


def is_throttle(status: int, content: bytes | None) -> bool:
    """True for Google's throttling answers: 429, or 403 with a rate/quota reason."""
    if status == 429:
        return True
    return status == 403 and google_error(status, content)[0] in RATE_REASONS


def from_http_error(exc: HttpError, what: str) -> ConnectorError:
    status = int(exc.resp.status)
    reason, message = google_error(status, exc.content)
    text = f"{what}: HTTP {status}" + (f" {reason}" if reason else "") + (
        f": {message}" if message else "")
    if status == 401:
        return AuthError(text)
    if status == 429 or (status == 403 and reason in RATE_REASONS):
        return ThrottledError(text + " (retries exhausted)")
    if status == 403:
        return AuthError(text + " (is the subject a directory admin, and are domain-wide "
                         "delegation and the read-only scopes granted?)")
    if status == 404:
        return NotFoundError(text)
    if status == 410:
        return CursorExpired(text)
    if status >= 500:
        return UnavailableError(text)
    if 400 <= status < 500:
        return ConfigError(text)
    return PermanentError(text)


@contextmanager
def translate(what: str) -> Iterator[None]:
    """Run a block that talks to Google; re-raise anything it throws as a `ConnectorError`.

    `what` names the read for the message ("users page 3", "members of group 0abc").
    """
    try:
        yield
    except ConnectorError:
        raise
    except HttpError as exc:
        raise from_http_error(exc, what) from exc
    except gauth.RefreshError as exc:
        # google-auth puts the endpoint's "error: description" first; no assertion, no key
        reason = str(exc.args[0])[:200] if exc.args else "refused"
        text = f"{what}: token request refused: {reason}"
        if getattr(exc, "retryable", False):
            raise UnavailableError(text) from exc
        raise AuthError(text) from exc
    except gauth.TransportError as exc:
        raise UnavailableError(f"{what}: token endpoint unreachable ({type(exc).__name__})") \
            from exc
    except gauth.GoogleAuthError as exc:
        raise ConfigError(f"{what}: service account credentials unusable "
                          f"({type(exc).__name__})") from exc
    except TimeoutError as exc:
        raise UnavailableError(f"{what}: timed out") from exc
    except (httplib2.HttpLib2Error, ConnectionError) as exc:
        raise UnavailableError(f"{what}: connection failed ({type(exc).__name__})") from exc
    except (orjson.JSONDecodeError, json.JSONDecodeError) as exc:
        raise BadDataError(f"{what}: answer is not valid JSON ({exc.msg})") from exc
    except OSError as exc:
        raise UnavailableError(f"{what}: network error ({type(exc).__name__})") from exc


def expect_dict(page: object, what: str) -> dict:
    """`page` if the SDK returned a JSON object, else BadDataError."""
    if not isinstance(page, dict):
        raise BadDataError(f"{what}: expected a JSON object, got {type(page).__name__}")
    return page
