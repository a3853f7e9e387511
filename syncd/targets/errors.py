"""What can go wrong talking to a target; `client.ScimClient` maps every HTTP outcome here.

TargetError
├── Refused       401/403: the token is wrong, revoked or not allowed (LiteLLM without its
│                 enterprise licence answers this way). Never retried; exit code 4.
├── Unreachable   connection refused, DNS, TLS: nothing answered. Retried, then exit code 4.
├── Throttled     429, with `retry_after` seconds when the target said so. Retried with backoff.
├── Transient     5xx and timeouts: the write may or may not have happened. Retried with backoff.
├── Gone          404: the resource is not there (deleted behind syncd's back).
├── Conflict      409: a uniqueness rule (a userName/displayName/email the target already holds).
├── Rejected      any other 4xx: the target refuses this request as sent.
└── BadResponse   2xx whose body is not the SCIM JSON asked for.

`retryable` says whether the same request may succeed later unchanged.
"""

from __future__ import annotations


class TargetError(Exception):
    """Base of every target error. `status` is the HTTP status (None: no answer)."""

    retryable = False

    def __init__(self, message: str, *, status: int | None = None, scim_type: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.scim_type = scim_type


class Refused(TargetError):
    pass


class Unreachable(TargetError):
    retryable = True


class Throttled(TargetError):
    retryable = True

    def __init__(self, message: str, *, status: int | None = 429, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class Transient(TargetError):
    retryable = True


class Gone(TargetError):
    pass


class Conflict(TargetError):
    pass


class Rejected(TargetError):
    pass


class BadResponse(TargetError):
    pass
