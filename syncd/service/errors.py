"""Typed errors of the service layer; the SCIM layer maps each to one HTTP status and scimType.

ServiceError
├── NotFound             the resource does not exist in the caller's directory   (404)
├── Conflict             a uniqueness rule would break (userName, displayName,
│                        externalId within a directory)                          (409 uniqueness)
├── PreconditionFailed   the caller's version (If-Match) is stale                (412)
├── InvalidFilter        the filter is malformed or names an unfilterable attribute (400)
├── InvalidPath          a PATCH path is malformed or names no attribute         (400)
├── InvalidValue         a value has the wrong type, is missing or is refused    (400)
├── InvalidSyntax        the request body is not a SCIM message of the right shape (400)
├── Mutability           the operation would change a readOnly/immutable attribute (400)
├── NoTarget             a PATCH path filter matched nothing where a match is required (400)
└── TooMany              the query would return more than the server allows      (400)
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error the service layer raises on purpose."""

    scim_type: str | None = None

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(ServiceError):
    pass


class Conflict(ServiceError):
    scim_type = "uniqueness"


class PreconditionFailed(ServiceError):
    pass


class InvalidFilter(ServiceError):
    scim_type = "invalidFilter"


class InvalidPath(ServiceError):
    scim_type = "invalidPath"


class InvalidValue(ServiceError):
    scim_type = "invalidValue"


class InvalidSyntax(ServiceError):
    scim_type = "invalidSyntax"


class Mutability(ServiceError):
    scim_type = "mutability"


class NoTarget(ServiceError):
    scim_type = "noTarget"


class TooMany(ServiceError):
    scim_type = "tooMany"
