"""Google's wire formats for the fake Directory API: ids, error bodies, page tokens, JWTs.

Shared by `connectors.testing.google` (the app) and the tests and benchmark that talk to it.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from connectors.testing.tenant import FakeGroup

API = "/admin/directory/v1"
USER_SCOPE = "https://www.googleapis.com/auth/admin.directory.user.readonly"
GROUP_SCOPE = "https://www.googleapis.com/auth/admin.directory.group.readonly"
#: Scopes that also grant the read-only ones.
WIDER = {
    USER_SCOPE: "https://www.googleapis.com/auth/admin.directory.user",
    GROUP_SCOPE: "https://www.googleapis.com/auth/admin.directory.group",
}
MAX_USERS_PAGE = 500
MAX_GROUPS_PAGE = 200
ADMIN_EMAIL = "admin@{domain}"
SA_EMAIL = "syncd-reader@fake-project.iam.gserviceaccount.com"


def google_user_id(tenant_id: str) -> str:
    """A Google-style user id: ``"1"`` followed by 20 digits, stable for a tenant id."""
    n = int.from_bytes(hashlib.blake2b(tenant_id.encode(), digest_size=10).digest(), "big")
    return f"1{n % 10**20:020d}"


def google_group_id(tenant_id: str) -> str:
    """A Google-style group id: ``"0"`` followed by 14 lowercase hex digits."""
    return "0" + hashlib.blake2b(tenant_id.encode(), digest_size=7).hexdigest()


def customer_id(domain: str) -> str:
    return "C0" + hashlib.blake2b(domain.encode(), digest_size=4).hexdigest()


def group_email(g: FakeGroup, domain: str) -> str:
    """The group's address in `domain` (its name, slugged)."""
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in g.name.lower())
    return f"{slug}@{domain}"


@lru_cache(maxsize=1)
def default_key() -> rsa.RSAPrivateKey:
    """One RSA key per process for the fake service account (generation takes ~0.1 s)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def service_account_info(token_uri: str, key: rsa.RSAPrivateKey | None = None) -> dict[str, str]:
    """A service-account JSON (as a dict) signed by `key` (default: the fake's own key)."""
    pem = (key or default_key()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "fake-project",
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": SA_EMAIL,
        "client_id": "100000000000000000001",
        "token_uri": token_uri,
    }


# -- wire helpers -----------------------------------------------------------------------------


def etag(*parts: object) -> str:
    return '"' + hashlib.blake2b(repr(parts).encode(), digest_size=12).hexdigest() + '"'


def error_body(code: int, message: str, reason: str, domain: str = "global",
               status: str | None = None, **extra: str) -> bytes:
    """Google's JSON error envelope (`{"error": {"code", "message", "errors": [...]}}`)."""
    detail = {"message": message, "domain": domain, "reason": reason, **extra}
    err: dict[str, Any] = {"code": code, "message": message, "errors": [detail]}
    if status:
        err["status"] = status
    return orjson.dumps({"error": err})


STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
REASONS = {400: ("Bad Request", "badRequest"), 401: ("Invalid Credentials", "authError"),
           403: ("Not Authorized to access this resource/api", "forbidden"),
           404: ("Resource Not Found", "notFound"), 409: ("Conflict", "conflict"),
           500: ("Internal error encountered.", "backendError"),
           502: ("Bad Gateway", "backendError"),
           503: ("The service is currently unavailable.", "backendError"),
           504: ("Deadline exceeded", "backendError")}


def status_error(code: int) -> bytes:
    message, reason = REASONS.get(code, ("Error", "unknown"))
    return error_body(code, message, reason, status=STATUS_NAMES.get(code))


UNAUTHENTICATED = error_body(
    401, "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential.", "authError",
    status="UNAUTHENTICATED", location="Authorization", locationType="header")
RATE_LIMITED = error_body(403, "Rate Limit Exceeded", "rateLimitExceeded", domain="usageLimits")
TOO_MANY = error_body(429, "Quota exceeded for quota metric 'Queries' and limit 'Queries per "
                      "minute per user' of service 'admin.googleapis.com'.", "rateLimitExceeded",
                      domain="usageLimits", status="RESOURCE_EXHAUSTED")
FORBIDDEN = status_error(403)
BAD_REQUEST = status_error(400)
NO_SCOPE = error_body(403, "Request had insufficient authentication scopes.",
                      "insufficientPermissions", status="PERMISSION_DENIED")


def not_found(what: str) -> bytes:
    return error_body(404, f"Resource Not Found: {what}", "notFound")


def invalid(param: str, value: str, hi: int) -> bytes:
    return error_body(400, f"Invalid value '{value}'. Values must be within the range: [1, {hi}]",
                      "invalid", location=param, locationType="parameter")


def _b64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _page_token(offset: int, clock: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([offset, clock])).decode().rstrip("=")


def _offset(token: str | None) -> int | None:
    """The offset a page token stands for; 0 for none; None when it is not ours."""
    if not token:
        return 0
    try:
        offset, _clock = orjson.loads(_b64(token))
        return int(offset) if offset >= 0 else None
    except (ValueError, TypeError):
        return None


def page(clock: int, q: dict[str, str], key: str, kind: str, cap: int, default: int,
         items: list[bytes]) -> tuple[int, bytes]:
    """One page of `items` (serialized resources) with Google's envelope and nextPageToken."""
    raw = q.get("maxResults", str(default))
    try:
        size = int(raw)
    except ValueError:
        return 400, invalid("maxResults", raw, cap)
    if not 1 <= size <= cap:
        return 400, invalid("maxResults", raw, cap)
    start = _offset(q.get("pageToken"))
    if start is None:
        return 400, error_body(400, "Invalid Input: pageToken", "invalid",
                               location="pageToken", locationType="parameter")
    chunk = items[start:start + size]
    out = [b'{"kind":"', kind.encode(), b'","etag":"\\"', str(clock).encode(), b'\\""']
    if chunk:
        out += [b',"', key.encode(), b'":[', b",".join(chunk), b"]"]
    if start + size < len(items):
        out += [b',"nextPageToken":"', _page_token(start + size, clock).encode(), b'"']
    out.append(b"}")
    return 200, b"".join(out)


def verify_assertion(assertion: str, key: rsa.RSAPrivateKey | None = None) -> dict[str, Any] | None:
    """The claims of an RS256 JWT signed by `key` (default: the fake's key), else None."""
    try:
        head, payload, sig = assertion.split(".")
        header = orjson.loads(_b64(head))
        if header.get("alg") != "RS256":
            return None
        (key or default_key()).public_key().verify(_b64(sig), f"{head}.{payload}".encode(),
                                            padding.PKCS1v15(), hashes.SHA256())
        claims = orjson.loads(_b64(payload))
    except (ValueError, InvalidSignature, orjson.JSONDecodeError):
        return None
    return claims if isinstance(claims, dict) and claims.get("iss") == SA_EMAIL else None


def new_key() -> rsa.RSAPrivateKey:
    """A fresh RSA key the fake does not know (for bad-credential tests)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)
