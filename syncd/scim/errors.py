"""The one error funnel: every exception a request can raise becomes a SCIM Error response.

    ServiceError (syncd.service.errors)   → 400 / 404 / 409 / 412 with its scimType
    Unauthorized                          → 401 + WWW-Authenticate: Bearer
    BodyTooLarge                          → 413
    UnsupportedMediaType                  → 415
    RequestValidationError, bad JSON      → 400 invalidSyntax (or invalidValue for a query parameter)
    starlette HTTPException (404 route,
      405 method, …)                      → that status, SCIM body, headers kept (Allow)
    IntegrityError (a concurrent writer)  → 409
    DataError (a value the database
      refuses: too long, NUL byte)        → 400 invalidValue
    OperationalError (store unreachable
      or locked), the pool's TimeoutError
      (every connection busy)             → 503 + Retry-After
    ClientDisconnect (the client left
      before sending its whole body)      → logged at info, no traceback; a 400 nobody reads
    anything else                         → 500 "internal error" (logged with its traceback;
                                            never a traceback or exception text in the body)

Invariant: every response produced here has `Content-Type: application/scim+json` and a body
`{"schemas": [ERROR], "status": "<code as string>", "scimType"?: ..., "detail": ...}`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from syncd.scim.responses import ScimResponse
from syncd.service.errors import Conflict, NotFound, PreconditionFailed, ServiceError

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
log = logging.getLogger("syncd.scim")

_STATUS: dict[type[ServiceError], int] = {NotFound: 404, Conflict: 409, PreconditionFailed: 412}
_REASON = {
    404: "no such endpoint",
    405: "method not allowed on this endpoint",
    413: "request body too large",
}


class Unauthorized(Exception):
    """No bearer token, or one that is unknown, revoked or expired."""

    def __init__(self, detail: str, *, error: str | None = "invalid_token") -> None:
        super().__init__(detail)
        self.detail = detail
        self.error = error


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the limit of {limit} bytes")


class UnsupportedMediaType(StarletteHTTPException):
    def __init__(self, content_type: str) -> None:
        super().__init__(
            415,
            f"content type {content_type!r} is not accepted; send application/scim+json or application/json",
        )


def error_body(status: int, detail: str, scim_type: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [ERROR], "status": str(status)}
    if scim_type:
        body["scimType"] = scim_type
    body["detail"] = detail
    return body


def error_response(
    status: int, detail: str, scim_type: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    return ScimResponse(error_body(status, detail, scim_type), status_code=status, headers=headers)


def status_of(exc: ServiceError) -> int:
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 400


def _service_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return error_response(status_of(exc), exc.detail, exc.scim_type)


def _unauthorized(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, Unauthorized)
    challenge = 'Bearer realm="syncd"'
    if exc.error:
        challenge += f', error="{exc.error}"'
    return error_response(401, exc.detail, headers={"WWW-Authenticate": challenge})


def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    if not detail or detail in ("Not Found", "Method Not Allowed", "Request Entity Too Large"):
        detail = _REASON.get(exc.status_code, "request failed")
    if exc.status_code == 304:
        return Response(status_code=304, headers=exc.headers)
    return error_response(exc.status_code, detail, None, dict(exc.headers or {}))


def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    parts: list[str] = []
    scim_type = "invalidSyntax"
    for err in exc.errors()[:5]:
        loc = [str(x) for x in err.get("loc", ())]
        if loc and loc[0] in ("query", "path", "header"):
            scim_type = "invalidValue"
        where = ".".join(loc[1:]) or (loc[0] if loc else "request")
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return error_response(400, "; ".join(parts) or "invalid request", scim_type)


def _integrity_error(_: Request, exc: Exception) -> Response:
    log.info("integrity error (concurrent change): %s", exc.__class__.__name__)
    return error_response(409, "the request conflicts with a concurrent change; retry it")


def _data_error(_: Request, exc: Exception) -> Response:
    log.info("value refused by the store: %s", getattr(exc, "orig", exc))
    return error_response(
        400, "a value is too long or not storable (e.g. contains a NUL byte)", "invalidValue"
    )


def _store_unavailable(_: Request, exc: Exception) -> Response:
    log.warning("store unavailable: %s", getattr(exc, "orig", exc))
    return error_response(503, "the store is busy or unreachable; retry later", headers={"Retry-After": "1"})


def _client_disconnect(request: Request, exc: Exception) -> Response:
    """Not a server error: the client went away mid-body (a timeout, a killed process). The
    request did nothing; there is no one to answer."""
    log.info(
        "client disconnected before sending the whole request body: %s %s", request.method, request.url.path
    )
    return error_response(400, "the client disconnected before sending the whole request body")


def _internal_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal error")


def install(app: FastAPI) -> None:
    """Register the funnel on `app` (most specific first is not needed: lookup is by MRO)."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(Unauthorized, _unauthorized)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(OperationalError, _store_unavailable)
    app.add_exception_handler(PoolTimeout, _store_unavailable)
    app.add_exception_handler(ClientDisconnect, _client_disconnect)
    app.add_exception_handler(Exception, _internal_error)
